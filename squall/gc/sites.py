"""Garbage collection at sites: compare the store's leases with what really exists there.

A resource is removed when its lease has expired, or when no lease names it
and its owner tags say it is this store's — but never while its job has
outputs that were not collected (``squall.jobs.uncollected``): those are
reported, for ``squall job attach``, until the user discards them
(``discard_uncollected``). A resource of another store (two
stores may share one HPC account) is only reported — removed only past the
expiry its tags carry, and only when asked (``include_foreign_expired``).
Nothing is removed while a controller holds the job's lock. Leases whose
resource is already gone are released. Every action is journaled.

Sites are listed in parallel, each within a time limit, and a site that
cannot even be opened (its inventory folder deleted) is reported without
stopping the others.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from squall.env_seconds import env_seconds
from squall.errors import SquallError
from squall.gc.actions import GcAction
from squall.jobs import cancel_unstarted, close_job, uncollected
from squall.paths import is_upload, uploads_dir
from squall.sites.registration import open_sites
from squall.sites.contract import LiveResource, Site
from squall.store import Lease, Store

DEFAULT_SITE_TIMEOUT = 20.0
NEVER_STARTED_AFTER = 60.0  # seconds a job may sit in its plan phase without a controller
UPLOAD_GRACE = 3600.0  # seconds an upload folder no job names is left alone (a submission may be arriving)


def site_timeout() -> float:
    """Seconds gc waits for one site's listing (``$SQUALL_GC_SITE_TIMEOUT``)."""
    return env_seconds("SQUALL_GC_SITE_TIMEOUT", DEFAULT_SITE_TIMEOUT)


Planned = tuple[GcAction, Site | None, LiveResource | None, Lease | None]


def plan_gc(store: Store, home: Path, now: float | None = None, include_foreign_expired: bool = False,
            discard_uncollected: bool = False) -> list[Planned]:
    now = time.time() if now is None else now
    sites, broken = open_sites(home, store)
    plan: list[Planned] = [(GcAction(name, "site", name, None, "error", message), None, None, None)
                           for name, message in broken]
    for site, listing in zip(sites, _list_in_parallel(sites, site_timeout())):
        if isinstance(listing, str):
            plan.append((GcAction(site.name, "site", site.name, None, "error", listing), site, None, None))
            continue
        leases = {(lease.kind, lease.resource): lease for lease in store.leases(site=site.name)}
        for res in listing:
            lease = leases.get((res.kind, res.resource))
            action, reason = _decide(store, res, lease, now, include_foreign_expired, discard_uncollected)
            job_id = res.job_id or (lease.job_id if lease else None)
            plan.append((GcAction(site.name, res.kind, res.resource, job_id, action, reason), site, res, lease))
        found = {(r.kind, r.resource) for r in listing}
        for key, lease in leases.items():
            if key in found or (lease.job_id and store.locks.controller_alive(lease.job_id)):
                continue
            action = GcAction(site.name, lease.kind, lease.resource, lease.job_id, "release", "resource already gone")
            plan.append((action, site, None, lease))
    return plan


def _decide(store: Store, res: LiveResource, lease: Lease | None, now: float,
            include_foreign_expired: bool, discard_uncollected: bool) -> tuple[str, str]:
    job_id = res.job_id or (lease.job_id if lease else None)
    if job_id and store.locks.controller_alive(job_id):
        return "keep", "a controller is driving this job"
    if res.kind == "process":
        return _decide_process(store, res)
    if lease is not None:
        if lease.expires_at <= now:
            return unless_uncollected(store, job_id, discard_uncollected,
                                       f"lease expired {int(now - lease.expires_at)} s ago")
        return "keep", (f"no controller, lease expires in {int(lease.expires_at - now)} s; "
                        f"'squall job attach {job_id}' resumes it")
    if res.store_id == store.store_id:
        return unless_uncollected(store, job_id, discard_uncollected, "orphaned: no lease in the store")
    owner = f"store {res.store_id}" if res.store_id else "no Squall owner tags of this store"
    if res.expires_at is None:
        return "foreign", f"not this store's ({owner}, no expiry): left alone"
    if res.expires_at > now:
        return "foreign", f"not this store's ({owner}), expires in {int(res.expires_at - now)} s: left alone"
    if include_foreign_expired:
        return "remove", f"another store's ({owner}), expired {int(now - res.expires_at)} s ago"
    return "foreign", (f"not this store's ({owner}), expired {int(now - res.expires_at)} s ago: "
                       "--include-foreign-expired removes it")


def _decide_process(store: Store, res: LiveResource) -> tuple[str, str]:
    """A process left working in a job folder: ended once its job is over (or its folder gone), if the job is
    this store's; a job that may still be attached keeps its processes (its tasks may be running)."""
    job = store.job(res.job_id) if res.job_id else None
    what = f"process {res.detail['pid']} ({res.detail['args'][:80]})"
    if job is None or res.store_id not in (None, store.store_id):
        return "foreign", f"{what} of a job not in this store: left alone"
    if job.phase == "done":
        return "remove", f"{what} still running after its job ended"
    if res.detail["gone"]:
        return "remove", f"{what} still running in the job folder removed since"
    return "keep", f"{what}: its job is not finished; 'squall job attach {job.id}' resumes it"


def unless_uncollected(store: Store, job_id: str | None, discard: bool, why: str) -> tuple[str, str]:
    """``remove`` for ``why``, unless the job has outputs never collected (and the user did not discard them)."""
    waiting = uncollected(store, job_id) if job_id and store.job(job_id) else []
    if not waiting:
        return "remove", why
    if discard:
        return "remove", f"{why}; uncollected outputs of task(s) {', '.join(map(str, waiting))} discarded"
    return "uncollected", (f"{why}, but outputs of task(s) {', '.join(map(str, waiting))} were never collected: "
                           f"'squall job attach {job_id}' collects them ('squall gc --discard-uncollected' "
                           "removes them)")


def _list_in_parallel(sites: list[Site], timeout: float) -> list[list[LiveResource] | str]:
    """Each site's live resources, or why they could not be listed; at most ``timeout`` s in all.

    Daemon threads: a site that never answers is abandoned at the deadline
    (its thread dies with the process) instead of holding up the others.
    """
    results: list[list[LiveResource] | str] = [f"no answer within {timeout:g} s" for _ in sites]

    def list_one(index: int, site: Site) -> None:
        try:
            results[index] = site.live_resources()
        except SquallError as exc:
            results[index] = exc.message
        except Exception as exc:  # noqa: BLE001 - one site's failure must not stop the others
            results[index] = f"internal error listing the site: {exc!r}"

    threads = [threading.Thread(target=list_one, args=(i, site), daemon=True) for i, site in enumerate(sites)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return list(results)


def collect_garbage(store: Store, home: Path, dry_run: bool = False, now: float | None = None,
                    include_foreign_expired: bool = False, discard_uncollected: bool = False) -> list[GcAction]:
    now = time.time() if now is None else now
    actions = []
    planned = plan_gc(store, home, now, include_foreign_expired, discard_uncollected)
    for action, site, resource, lease in planned:
        actions.append(action)
        if dry_run or action.action in ("keep", "error", "foreign", "uncollected"):
            continue
        store.record(
            action.job_id, "gc", action.action,
            site=action.site, kind=action.kind, resource=action.resource, reason=action.reason,
        )
        if resource is not None and site is not None:
            site.remove(resource)
        if lease is not None:  # the plan found it by (kind, resource): release it without listing them all again
            store.release_lease(lease.id)
        _close_abandoned_job(store, action.job_id)
    actions += _close_never_started(store, now, dry_run)
    actions += _reap_uploads(store, home, now, dry_run)
    for site in {id(site): site for _, site, _, _ in planned if site is not None}.values():
        site.close()
    return actions


def _close_abandoned_job(store: Store, job_id: str | None) -> None:
    """A job whose controller died and whose resources are gone: finish its record honestly."""
    job = store.job(job_id) if job_id else None
    if job is None or job.phase == "done" or store.leases(job_id=job.id):
        return
    collected = any(e.phase == "collect" and e.event == "end" for e in store.journal(job.id))
    if collected:  # the controller died in down, after every output was in the results folder
        store.record(job.id, "gc", "finished", reason="collect was complete; squall gc finished down")
        close_job(store, job.id, None, cancelled=job.cancel_requested)
        return
    error = "abandoned by its controller; its resources were removed by squall gc"
    store.update_job(job.id, phase="done", status="failed", error=error, finished_at=time.time())
    store.record(job.id, "done", "failed", error=error)


def _reap_uploads(store: Store, home: Path, now: float, dry_run: bool) -> list[GcAction]:
    """The server's upload folders whose job has ended (its controller died before it could remove them),
    or that no job names (a submission stopped half-way) once an hour old."""
    folder = uploads_dir(home)
    if not folder.is_dir():
        return []
    named = {job.spec_dir: job for job in store.jobs(None) if is_upload(home, job.spec_dir)}
    actions = []
    for upload in sorted(folder.iterdir()):
        job = named.get(str(upload))
        if job is not None and job.phase != "done":
            continue
        if job is None and now - upload.stat().st_mtime < UPLOAD_GRACE:
            continue
        reason = "its job ended" if job else "no job names it"
        actions.append(GcAction("server", "upload", upload.name, job.id if job else None, "remove", reason))
        if not dry_run:
            store.record(job.id if job else None, "gc", "remove", kind="upload", resource=upload.name, reason=reason)
            shutil.rmtree(upload, ignore_errors=True)
    return actions


def _close_never_started(store: Store, now: float, dry_run: bool) -> list[GcAction]:
    """Jobs left in their plan phase by a controller stopped before ``up``: nothing exists for them."""
    actions = []
    for job in store.jobs_in_phase("plan"):
        if now - job.created_at < NEVER_STARTED_AFTER or store.locks.controller_alive(job.id) or store.leases(job_id=job.id):
            continue
        reason = "never started: its controller stopped before anything was created"
        actions.append(GcAction(job.site, "job", job.id, job.id, "close", reason))
        if dry_run:
            continue
        store.record(job.id, "gc", "closed", reason=reason)
        cancel_unstarted(store, job.id, reason)
    return actions

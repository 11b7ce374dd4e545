"""The garbage collector: compare the store's leases with what really exists.

A resource is removed when its lease has expired, or when no lease names it
at all; never while a controller holds the job's lock. Leases whose resource
is already gone are released. Every action is journaled.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from squall.errors import SquallError
from squall.locks import controller_alive
from squall.sites import all_sites
from squall.sites.base import LiveResource, Site
from squall.store import Lease, Store


@dataclass(frozen=True)
class GcAction:
    site: str
    kind: str
    resource: str
    job_id: str | None
    action: str  # remove, keep, release, or error (the site could not be listed)
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def plan_gc(store: Store, home: Path, now: float | None = None) -> list[tuple[GcAction, Site, LiveResource | None, Lease | None]]:
    now = time.time() if now is None else now
    plan = []
    for site in all_sites(home, store):
        leases = {(l.kind, l.resource): l for l in store.leases(site=site.name)}
        try:
            live = site.inventory()
        except SquallError as exc:  # one unreachable site must not stop the others' collection
            plan.append((GcAction(site.name, "site", site.name, None, "error", exc.message), site, None, None))
            continue
        for res in live:
            lease = leases.get((res.kind, res.resource))
            job_id = res.job_id or (lease.job_id if lease else None)
            if job_id and controller_alive(home, job_id):
                action, reason = "keep", "a controller is driving this job"
            elif lease is None:
                action, reason = "remove", "orphaned: no lease in the store"
            elif lease.expires_at <= now:
                action, reason = "remove", f"lease expired {int(now - lease.expires_at)} s ago"
            else:
                action, reason = "keep", (
                    f"no controller, lease expires in {int(lease.expires_at - now)} s; "
                    f"'squall job attach {job_id}' resumes it"
                )
            plan.append((GcAction(site.name, res.kind, res.resource, job_id, action, reason), site, res, lease))
        found = {(r.kind, r.resource) for r in live}
        for key, lease in leases.items():
            if key in found or (lease.job_id and controller_alive(home, lease.job_id)):
                continue
            action = GcAction(site.name, lease.kind, lease.resource, lease.job_id, "release", "resource already gone")
            plan.append((action, site, None, lease))
    return plan


def collect_garbage(store: Store, home: Path, dry_run: bool = False, now: float | None = None) -> list[GcAction]:
    actions = []
    planned = plan_gc(store, home, now)
    for action, site, resource, lease in planned:
        actions.append(action)
        if dry_run or action.action in ("keep", "error"):
            continue
        store.record(
            action.job_id, "gc", action.action,
            site=action.site, kind=action.kind, resource=action.resource, reason=action.reason,
        )
        if resource is not None:
            site.remove(resource)
        if lease is not None:  # the plan found it by (kind, resource): release it without listing them all again
            store.release_lease(lease.id)
        _close_abandoned_job(store, action.job_id)
    for site in {id(site): site for _, site, _, _ in planned}.values():
        site.close()
    return actions


def _close_abandoned_job(store: Store, job_id: str | None) -> None:
    job = store.job(job_id) if job_id else None
    if job is None or job.phase == "done" or store.leases(job_id=job.id):
        return
    error = "abandoned by its controller; its resources were removed by squall gc"
    store.update_job(job.id, phase="done", status="failed", error=error, finished_at=time.time())
    store.record(job.id, "done", "failed", error=error)

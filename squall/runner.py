"""The one lifecycle every job goes through, whatever the site:

    plan -> up -> stage -> launch -> monitor -> collect -> down

Each transition is written to the store *before* the runner acts, so any
process can later resume the job (``job attach``) or clean it (``gc``) from
the store alone. ``down`` runs in every case: normal end, error, SIGINT or
SIGTERM; signals that arrive during ``down`` are held until it is done.
"""

from __future__ import annotations

import json
from dataclasses import asdict
import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from squall.errors import Interrupted, SquallError
from squall.jobs import JobResult, final_status, new_job_id, new_plan, plan_from_store
from squall.locks import ControllerLock, PollLock
from squall.sites import open_site
from squall.sites.base import JobPlan, Reporter, Site, TaskState
from squall.spec import ResolvedSpec
from squall.store import JobRow, Store

PHASES = ("plan", "up", "stage", "launch", "monitor", "collect", "down", "done")
DEFAULT_LEASE_MARGIN = 600.0
STDERR_TAIL = 2000


def lease_margin() -> float:
    """Seconds past the expected end before a lease counts as expired."""
    return float(os.environ.get("SQUALL_LEASE_MARGIN", DEFAULT_LEASE_MARGIN))


class _CancelRequested(Exception):
    pass


class SignalGuard:
    """Turns SIGINT/SIGTERM into ``Interrupted``, except while shielded."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.shielded = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signal.Signals(signum).name
        if not self.shielded:
            raise Interrupted(self.received)

    @contextmanager
    def shield(self) -> Iterator[None]:
        self.shielded = True
        yield


class Runner:
    def __init__(self, store: Store, home: Path, reporter: Reporter | None = None):
        self.store = store
        self.home = home
        self.reporter = reporter or Reporter()
        self._sites: dict[str, Site] = {}

    def _site(self, name: str) -> Site:
        """One site object (and so one SSH connection) per site, from submit to the end of drive."""
        if name not in self._sites:
            site = open_site(name, self.home, self.store)
            self._sites[name] = self._sites[site.name] = site
        return self._sites[name]

    def close(self) -> None:
        for site in set(self._sites.values()):
            site.close()
        self._sites.clear()

    # plan -----------------------------------------------------------------

    def submit(
        self, resolved: ResolvedSpec, site_name: str | None, results_root: Path, keep_remote: bool = False
    ) -> JobPlan:
        """Plan a job and record it; nothing exists anywhere yet."""
        site = self._site(site_name or resolved.spec.site)
        plan = new_plan(resolved, new_job_id(), results_root, keep_remote)
        site.check(plan)
        now = time.time()
        spec = resolved.spec
        self.store.create_job(
            JobRow(
                id=plan.job_id,
                name=spec.name,
                project=spec.project,
                site=site.name,
                spec=spec.model_dump(mode="json"),
                spec_dir=str(resolved.spec_dir),
                results_dir=str(plan.results_dir),
                phase="plan",
                status="pending",
                error=None,
                cancel_requested=False,
                network_isolated=None,
                created_at=now,
                updated_at=now,
                finished_at=None,
                keep_remote=keep_remote,
            ),
            [[[i.rel, i.size] for i in task.inputs] for task in plan.tasks],
        )
        self.store.record(
            plan.job_id,
            "plan",
            "end",
            site=site.name,
            tasks=len(plan.tasks),
            bytes=sum(i.size for t in plan.tasks for i in t.inputs),
        )
        return plan

    # the lifecycle --------------------------------------------------------

    def drive(self, job_id: str) -> JobResult:
        """Run (or resume) a job to its end; raises ``Interrupted`` after cleaning up."""
        with ControllerLock(self.home, job_id):
            job = self.store.job(job_id)
            assert job is not None, job_id
            if job.phase == "done":
                return JobResult.load(self.store, job_id)
            plan = plan_from_store(job, self.store.tasks(job_id))
            site = self._site(job.site)
            try:
                with SignalGuard() as guard:
                    self._lifecycle(job, plan, site, guard)
            finally:
                self.close()
            if guard.received:
                raise Interrupted(guard.received)
            return JobResult.load(self.store, job_id)

    def _lifecycle(self, job: JobRow, plan: JobPlan, site: Site, guard: SignalGuard) -> None:
        start = PHASES.index(job.phase)
        launched = start >= PHASES.index("launch")
        error: str | None = None
        try:
            try:
                self._check_cancel(plan)
                if start <= PHASES.index("up"):
                    self._enter(plan, "up")
                    site.up(plan, lambda kind, resource: self._claim(plan, site, kind, resource))
                if start <= PHASES.index("stage"):
                    self._enter(plan, "stage")
                    site.stage(plan, self.reporter)
                self._check_cancel(plan)
                if start <= PHASES.index("launch"):
                    self._enter(plan, "launch")
                    self.store.extend_leases(plan.job_id, self._expiry(plan, site, 0))
                    launched = True
                    self.store.record(plan.job_id, "launch", "end", **site.launch(plan))
                if start <= PHASES.index("monitor"):
                    self._enter(plan, "monitor")
                    self._monitor(plan, site)
                if start <= PHASES.index("collect"):
                    self._enter(plan, "collect")
                    self._collect(plan, site)
            except Exception as exc:  # noqa: BLE001 - every failure ends in down
                error = self._describe_failure(plan, exc)
                if launched:
                    self._salvage(plan, site)
        finally:
            with guard.shield():
                error = self._down(plan, site, error)
                self._finish(plan, error, interrupted=guard.received is not None)

    def _describe_failure(self, plan: JobPlan, exc: BaseException) -> str | None:
        if isinstance(exc, Interrupted):
            self.store.record(plan.job_id, self._phase(plan), "interrupted", signal=exc.signal_name)
            return None
        if isinstance(exc, _CancelRequested):
            self.store.record(plan.job_id, self._phase(plan), "cancelled")
            return None
        message = exc.message if isinstance(exc, SquallError) else f"internal error: {exc!r}"
        self.store.record(
            plan.job_id, self._phase(plan), "error", message=message, traceback=traceback.format_exc()
        )
        return message

    def _phase(self, plan: JobPlan) -> str:
        job = self.store.job(plan.job_id)
        return job.phase if job else "plan"

    def _enter(self, plan: JobPlan, phase: str) -> None:
        self.store.update_job(plan.job_id, phase=phase, status="running")
        self.store.record(plan.job_id, phase, "begin")
        self.reporter.phase(plan.job_id, phase)

    def _check_cancel(self, plan: JobPlan) -> None:
        job = self.store.job(plan.job_id)
        if job and job.cancel_requested:
            raise _CancelRequested()

    def _expiry(self, plan: JobPlan, site: Site, staging_allowance: float) -> float:
        return time.time() + staging_allowance + site.max_duration(plan) + lease_margin()

    def _claim(self, plan: JobPlan, site: Site, kind: str, resource: str) -> None:
        expires = self._expiry(plan, site, staging_allowance=lease_margin())
        tags = {**plan.tags, "squall:expires": str(int(expires))}
        self.store.add_lease(plan.job_id, site.name, kind, resource, tags, expires)
        self.store.record(plan.job_id, "up", "lease", kind=kind, resource=resource, expires_at=expires)

    def _poll(self, plan: JobPlan, site: Site) -> list[TaskState]:
        """This job's task states; for remote sites, one status call per site per interval.

        Every controller process at a site shares the answer through the store:
        whoever finds it older than the interval asks the site once, for all the
        site's active jobs, under a per-site lock.
        """
        if not site.shared_poll:
            return site.poll([plan])[plan.job_id]
        with PollLock(self.home, site.name):
            cached = self.store.site_poll(site.name)
            if cached and time.time() - cached[0] < site.poll_interval and plan.job_id in cached[1]:
                return [TaskState(**s) for s in cached[1][plan.job_id]]
            plans = {plan.job_id: plan}
            for job in self.store.active_jobs(site.name):
                if job.id not in plans:
                    plans[job.id] = plan_from_store(job, self.store.tasks(job.id))
            states = site.poll(list(plans.values()))
            self.store.save_site_poll(site.name, time.time(), {j: [asdict(s) for s in v] for j, v in states.items()})
            self.store.record(None, "poll", "remote", site=site.name, jobs=len(plans))
            return states[plan.job_id]

    def _monitor(self, plan: JobPlan, site: Site) -> None:
        cancel_sent = False
        seen: dict[int, tuple] = {}
        while True:
            states = self._poll(plan, site)
            self._save_states(plan, states, seen)
            self.reporter.tasks(states)
            if all(s.final for s in states):
                return
            job = self.store.job(plan.job_id)
            if job and job.cancel_requested and not cancel_sent:
                self.store.record(plan.job_id, "monitor", "cancel")
                site.cancel(plan)
                cancel_sent = True
            site.wait([plan], site.poll_interval)

    def _save_states(self, plan: JobPlan, states: list[TaskState], seen: dict[int, tuple]) -> None:
        changed = {}
        for s in states:
            key = (s.state, s.exit_code)
            if seen.get(s.index) == key:
                continue
            seen[s.index] = key
            changed[s.index] = {
                "status": s.state,
                "exit_code": s.exit_code,
                "wall_time": s.wall_time,
                "max_rss_kb": s.max_rss_kb,
                "network_isolated": s.network_isolated,
            }
            if s.final:
                self.store.record(plan.job_id, "monitor", "task", index=s.index, state=s.state, exit_code=s.exit_code)
        if changed:
            self.store.update_tasks(plan.job_id, changed)

    def _collect(self, plan: JobPlan, site: Site) -> None:
        done = {t.idx for t in self.store.tasks(plan.job_id) if t.outputs is not None}
        todo = [t.index for t in plan.tasks if t.index not in done]
        self._store_collected(plan, site.collect(plan, todo, self.reporter))

    def _store_collected(self, plan: JobPlan, collected: list) -> None:
        updates = {}
        for item in collected:
            tail = _stderr_tail(plan.results_dir / "meta" / f"task-{item.index}" / "stderr.log")
            updates[item.index] = {"outputs": item.files, "stderr_tail": tail}
            if item.error:
                updates[item.index]["status"] = "failed"
            self.store.record(
                plan.job_id, "collect", "task", index=item.index, files=item.files, bytes=item.bytes, error=item.error
            )
        if updates:
            self.store.update_tasks(plan.job_id, updates)

    def _salvage(self, plan: JobPlan, site: Site) -> None:
        """After a failure or interrupt: stop the tasks, keep what they produced."""
        try:
            site.cancel(plan)
            deadline = time.monotonic() + 30
            states = site.poll([plan])[plan.job_id]
            while not all(s.final for s in states) and time.monotonic() < deadline:
                time.sleep(site.poll_interval)
                states = site.poll([plan])[plan.job_id]
            self._save_states(plan, states, {})
            done = {t.idx for t in self.store.tasks(plan.job_id) if t.outputs is not None}
            finished = [s.index for s in states if s.final and s.index not in done]
            self._store_collected(plan, site.collect(plan, finished, self.reporter))
        except (Interrupted, SquallError, OSError) as exc:
            self.store.record(plan.job_id, "collect", "salvage-skipped", reason=str(exc))

    def _down(self, plan: JobPlan, site: Site, error: str | None) -> str | None:
        self._enter(plan, "down")
        try:
            site.down(plan)
        except (SquallError, OSError) as exc:
            self.store.record(plan.job_id, "down", "error", message=str(exc))
            return f"{error + '; ' if error else ''}down failed: {exc} (squall gc will retry)"
        for lease in self.store.leases(job_id=plan.job_id):
            self.store.release_lease(lease.id)
        self.store.record(plan.job_id, "down", "end")
        return error

    def _finish(self, plan: JobPlan, error: str | None, interrupted: bool) -> None:
        job = self.store.job(plan.job_id)
        tasks = self.store.tasks(plan.job_id)
        cancelled = interrupted or bool(job and job.cancel_requested)
        pending = {i: {"status": "cancelled"} for i in (t.idx for t in tasks if t.status in ("pending", "queued", "running"))}
        if pending and (cancelled or error):
            self.store.update_tasks(plan.job_id, pending)
            tasks = self.store.tasks(plan.job_id)
        status = final_status(tasks, cancelled, error)
        isolated = [t.network_isolated for t in tasks if t.network_isolated is not None]
        self.store.update_job(
            plan.job_id,
            phase="done",
            status=status,
            error=error,
            finished_at=time.time(),
            network_isolated=all(isolated) if isolated else None,
        )
        self.store.record(plan.job_id, "done", status, error=error)
        if plan.results_dir.is_dir():
            report = JobResult.load(self.store, plan.job_id).to_dict()
            (plan.results_dir / "job.json").write_text(json.dumps(report, indent=2) + "\n")
        self.reporter.phase(plan.job_id, "done")


def _stderr_tail(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - STDERR_TAIL))
            return handle.read().decode(errors="replace") or None
    except FileNotFoundError:
        return None

"""The one lifecycle every job goes through, whatever the site:

    plan -> up -> stage -> launch -> monitor -> collect -> down

Each transition is written to the store *before* the runner acts, so any
process can later resume the job (``job attach``) or clean it (``gc``) from
the store alone. ``down`` runs in every case: normal end, error, SIGINT or
SIGTERM; signals that arrive during ``down`` are held until it is done.
"""

from __future__ import annotations

import getpass
import shutil
import time
import traceback
from dataclasses import asdict, replace
from decimal import Decimal
from pathlib import Path

from squall.env_seconds import env_seconds
from squall.admission import Admission, SiteOffer, admit, offered
from squall.errors import HomeUnusable, Interrupted, InvalidInput, OutputsKept, SiteUnreachable, SquallError
from squall import log_context
from squall.interrupts import SignalGuard
from squall.jobs import JobResult, cancel_unstarted, close_job, new_job_id, new_plan, plan_from_store, uncollected
from squall.notify import Notifier
from squall.placement import requested_site
from squall.paths import is_upload
from squall.results import check_results_root, missing_outputs, move_collected, write_report
from squall.sites.registration import open_site, remember_site
from squall.job_types import JobPlan, TaskState
from squall.sites.contract import Reporter, Site
from squall.spec import ResolvedSpec
from squall.store import JobRow, Store
from squall.user_config import Defaults
from squall.job_types import FINAL, RAN, TaskStatus
from squall.sites.workarea import lease_margin

PHASES = ("plan", "up", "stage", "launch", "monitor", "collect", "down", "done")
DEFAULT_KEEP_UNCOLLECTED = 7 * 24 * 3600.0
SALVAGE_WAIT = 30.0  # seconds for started tasks to stop after a cancel, before their outputs are collected
DOWN_PAUSES = (2.0, 4.0, 8.0, 16.0, 30.0)  # before asking an unreachable site again to remove a job's things
STDERR_TAIL = 2000


def keep_uncollected() -> float:
    """Seconds a site keeps a job's uncollected outputs for ``job attach`` (then gc may remove them)."""
    return env_seconds("SQUALL_KEEP_UNCOLLECTED", DEFAULT_KEEP_UNCOLLECTED)


class _CancelRequested(Exception):
    pass


class Runner:
    def __init__(self, store: Store, home: Path, reporter: Reporter | None = None, notifier: Notifier | None = None,
                 offer: SiteOffer | None = None):
        """``offer``: which sites a job may be placed at (the server's rule for API tokens; None: any)."""
        self.store = store
        self.home = home
        self.offer = offer
        self.reporter = reporter or Reporter()
        self.notifier = notifier
        self._sites: dict[str, Site] = {}
        self._other_plans: dict[str, JobPlan] = {}

    def _site(self, name: str) -> Site:
        """One site object (and so one SSH connection) per site, from submit to the end of drive."""
        if name not in self._sites:
            site = offered(open_site(name, self.home, self.store), self.offer)
            self._sites[name] = self._sites[site.name] = site
        return self._sites[name]

    def close(self) -> None:
        for site in set(self._sites.values()):
            site.close()
        self._sites.clear()

    def _notify(self, job_id: str, event: str) -> None:
        """Launched: the estimate; finished: the outcome and the cost (never raises)."""
        if self.notifier is None:
            return
        result = JobResult.load(self.store, job_id)
        payload = {"cost": result.cost()} if event == "finished" else \
            {"estimate": (result.job.estimate or {}).get("site_estimate")}
        if event == "finished":
            payload["status"] = result.job.status
        try:
            self.notifier.event(result.job, event, payload)
        except Exception as exc:  # noqa: BLE001 - a notification never fails a job (its own bug included)
            self.store.record(job_id, "notify", "error", notification=event, error=type(exc).__name__)

    # plan -----------------------------------------------------------------

    def admit(
        self, resolved: ResolvedSpec, site_name: str | None, results_root: Path, keep_remote: bool = False,
        defaults: Defaults | None = None, strategy: str = "balanced", weights: dict[str, Decimal] | None = None,
        job_id: str | None = None,
    ) -> tuple[ResolvedSpec, JobPlan, Admission]:
        """Plan a job and decide where it runs and what it may cost; nothing is created or written.

        ``defaults`` (the user's config file and environment) fill in the site, project and organisation
        where neither the command line nor the spec says. ``job_id``: the id the caller chose (so that it
        can clean up after a signal that lands while the job is being created)."""
        defaults = defaults or Defaults.builtin()
        named = resolved.spec.model_fields_set
        site_default = defaults["site"]
        requested, source = requested_site(site_name, resolved.spec.site if "site" in named else None,
                                           site_default.value, site_default.source)
        if "project" not in named:
            resolved = replace(resolved, spec=resolved.spec.model_copy(update={"project": defaults["project"].value}))
        plan = new_plan(resolved, job_id or new_job_id(), results_root, self.store.store_id, keep_remote,
                        org=defaults["org"].value)
        admission = admit(plan, requested, source, self._site, self.store, strategy, weights)
        self.reporter.admitted(admission.placement, admission.estimate.to_dict())
        check_results_root(plan.results_dir.parent, sum(i.size for t in plan.tasks for i in t.inputs))
        return resolved, plan, admission

    def submit(
        self, resolved: ResolvedSpec, site_name: str | None, results_root: Path, keep_remote: bool = False,
        defaults: Defaults | None = None, strategy: str = "balanced", weights: dict[str, Decimal] | None = None,
        job_id: str | None = None,
    ) -> JobPlan:
        """Plan, admit and record a job: its budget holds are taken as it is created; nothing exists anywhere
        yet. A job whose holds do not fit is refused (exit 4) and leaves no trace."""
        resolved, plan, admission = self.admit(resolved, site_name, results_root, keep_remote, defaults, strategy,
                                               weights, job_id)
        site = admission.site
        now = time.time()
        spec = resolved.spec
        user = (defaults or Defaults.builtin())["user"].value or getpass.getuser()
        org = plan.tags["squall:org"]
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
                org=org,
                estimate=admission.record(),
                user=user,
            ),
            [[[i.rel, i.size] for i in task.inputs] for task in plan.tasks],
            admit=lambda db: admission.take(db, plan, user),
        )
        remember_site(self.store, site.name)
        self.store.record(
            plan.job_id,
            "plan",
            "end",
            site=site.name,
            placement=admission.placement.to_dict(),
            tasks=len(plan.tasks),
            bytes=sum(i.size for t in plan.tasks for i in t.inputs),
        )
        return plan

    def close_unstarted(self, job_id: str) -> None:
        """A job interrupted between its plan and ``up``: nothing exists, so it ends cancelled at once."""
        job = self.store.job(job_id)
        if job is not None and job.phase == "plan":
            cancel_unstarted(self.store, job_id, "interrupted before anything was created")

    def move_results(self, job_id: str, results_root: Path) -> None:
        """Point an unfinished job at another results folder (``job attach --results``).

        What an earlier collect already put in the old folder is moved along,
        so the job's results end up in one place.
        """
        with self.store.locks.controller(job_id):
            job = self.store.job(job_id)
            assert job is not None, job_id
            if job.phase == "done":
                raise InvalidInput(f"--results: job {job_id} is finished; its results are in {job.results_dir}")
            new_dir = results_root.resolve() / job_id
            old_dir = Path(job.results_dir)
            if new_dir == old_dir:
                return
            check_results_root(new_dir.parent, 0)
            move_collected(old_dir, new_dir, [t.idx for t in self.store.tasks(job_id)])
            self.store.update_job(job_id, results_dir=str(new_dir))
            self.store.record(job_id, job.phase, "results-moved", old=str(old_dir), new=str(new_dir))

    # the lifecycle --------------------------------------------------------

    def drive(self, job_id: str) -> JobResult:
        """Run (or resume) a job to its end; raises ``Interrupted`` after cleaning up."""
        job = self.store.job(job_id)
        assert job is not None, job_id
        with log_context.bound(org=job.org, project=job.project, user=job.user, job=job_id):
            return self._drive(job_id)

    def _drive(self, job_id: str) -> JobResult:
        with self.store.locks.controller(job_id):
            job = self.store.job(job_id)
            assert job is not None, job_id
            if job.phase == "done":
                return JobResult.load(self.store, job_id)
            plan = plan_from_store(job, self.store.tasks(job_id), self.store.store_id)
            site = self._site(job.site)
            try:
                with SignalGuard() as guard:
                    if guard.received:  # a signal came before and was lost on its way: nothing has started
                        raise Interrupted(guard.received)
                    self._lifecycle(job, plan, site, guard)
            finally:
                self.close()
            if guard.received:
                raise Interrupted(guard.received)
            return JobResult.load(self.store, job_id)

    def _lifecycle(self, job: JobRow, plan: JobPlan, site: Site, guard: SignalGuard) -> None:
        start = PHASES.index(job.phase)
        if job.phase == "collect" and any(t.status not in FINAL for t in self.store.tasks(job.id)):
            start = PHASES.index("monitor")  # kept while a host was silent: learn how its tasks ended first
        launched = start >= PHASES.index("launch")
        unseen = False  # launched tasks whose end the site could not tell (it did not answer the salvage)
        home_unusable = False
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
                    self._notify(plan.job_id, "launched")
                if start <= PHASES.index("monitor"):
                    self._enter(plan, "monitor")
                    self._monitor(plan, site)
                if start <= PHASES.index("collect"):
                    self._enter(plan, "collect")
                    self._collect(plan, site)
                elif launched and (waiting := uncollected(self.store, plan.job_id)):  # resumed in down: collect first
                    self.store.record(plan.job_id, "down", "uncollected", tasks=waiting)
                    unseen = not self._salvage(plan, site)
            except HomeUnusable:
                home_unusable = True  # nothing can be journaled: stop where the job is, for 'attach'
                raise
            except Exception as exc:  # noqa: BLE001 - every failure ends in down
                error = self._describe_failure(plan, exc)
                if launched and not isinstance(exc, OutputsKept):  # the results folder cannot take them now
                    unseen = not self._salvage(plan, site)
        finally:
            if not home_unusable:
                with guard.shield():
                    if not self._keep_uncollected(plan, site, error, unseen):
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
        code = {"exit_code": int(exc.exit_code)} if isinstance(exc, SiteUnreachable) else {}
        self.store.record(
            plan.job_id, self._phase(plan), "error", message=message, traceback=traceback.format_exc(), **code
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

    def _poll(self, plan: JobPlan, site: Site, fresh: bool = False) -> list[TaskState]:
        """This job's task states; for remote sites, one status call per site per interval.

        Every controller process at a site shares the answer through the store:
        whoever finds it older than the interval asks the site once, for all the
        site's active jobs, under a per-site lock. ``fresh``: a task is known to
        have changed since, so a shared answer is not used.
        """
        if not site.shared_poll:
            return site.poll([plan])[plan.job_id]
        with self.store.locks.poll(site.name):
            cached = None if fresh else self.store.site_poll(site.name)
            if cached and time.time() - cached[0] < site.poll_interval and plan.job_id in cached[1]:
                return [TaskState(**s) for s in cached[1][plan.job_id]]
            plans = {plan.job_id: plan}
            for job in self.store.active_jobs(site.name):
                if job.id not in plans:
                    plans[job.id] = self._other_plan(job)
            states = site.poll(list(plans.values()))
            self.store.save_site_poll(site.name, time.time(), {j: [asdict(s) for s in v] for j, v in states.items()})
            return states[plan.job_id]

    def _other_plan(self, job: JobRow) -> JobPlan:
        """Another controller's job, for the shared poll: its spec is validated once, not at every poll."""
        if job.id not in self._other_plans:
            self._other_plans[job.id] = plan_from_store(job, self.store.tasks(job.id), self.store.store_id)
        return self._other_plans[job.id]

    def _monitor(self, plan: JobPlan, site: Site) -> None:
        cancel_sent, woken = False, False
        seen: dict[int, tuple] = {}
        while True:
            states = self._poll(plan, site, fresh=woken)
            if not cancel_sent:
                _blame_the_site(states)
            self._save_states(plan, states, seen)
            self.reporter.tasks(states)
            job_errors = sorted({s.job_error for s in states if s.job_error})
            if job_errors:
                raise SquallError("; ".join(job_errors))
            if all(s.final for s in states):
                return
            job = self.store.job(plan.job_id)
            if job and job.cancel_requested and not cancel_sent:
                self.store.record(plan.job_id, "monitor", "cancel")
                site.cancel(plan)
                cancel_sent = True
            woken = self._wait(plan, site)

    def _wait(self, plan: JobPlan, site: Site) -> bool:
        """Until the next poll. A job alone at its site waits as the site can (woken as soon as a task changes:
        True); beside other active jobs, the shared poll's interval paces every controller, so the site is
        still asked once per interval whatever the number of jobs."""
        if site.shared_poll and any(job.id != plan.job_id for job in self.store.active_jobs(site.name)):
            time.sleep(site.poll_interval)
            return False
        return site.wait([plan], site.poll_interval)

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
                "error": s.error,
            }
            self.store.record(plan.job_id, "monitor", "task", index=s.index, state=s.state, exit_code=s.exit_code,
                              error=s.error)  # each change of state (live events follow the journal)
        if changed:
            self.store.update_tasks(plan.job_id, changed)

    def _collect(self, plan: JobPlan, site: Site) -> None:
        done = {t.idx for t in self.store.tasks(plan.job_id) if t.outputs is not None}
        todo = [t.index for t in plan.tasks if t.index not in done]
        try:
            collected = site.collect(plan, todo, self.reporter)
        except OutputsKept:
            if plan.results_dir.is_dir():
                raise
            # the folder vanished (removed or moved) under the collect: once more, into a folder made anew
            self.store.record(plan.job_id, "collect", "vanished", folder=str(plan.results_dir))
            collected = site.collect(plan, todo, self.reporter)
        self._store_collected(plan, collected)
        self._verify_collected(plan, site)
        self.store.record(plan.job_id, "collect", "end")  # gc: a controller lost after this lost nothing

    def _verify_collected(self, plan: JobPlan, site: Site) -> None:
        """Every collected file is where its manifest says: one that vanished (the results folder removed or
        moved meanwhile) is collected again from the site, where it stays until ``down``; still missing, the
        job keeps its folder there for ``job attach --results`` (exit 6), naming what is missing."""
        def collected() -> dict[int, int]:
            return {t.idx: t.outputs for t in self.store.tasks(plan.job_id) if t.outputs}

        missing = missing_outputs(plan.results_dir, collected())
        if not missing:
            return
        self.store.record(plan.job_id, "collect", "missing", tasks=sorted(missing), again=True)
        self._store_collected(plan, site.collect(plan, sorted(missing), self.reporter))
        missing = missing_outputs(plan.results_dir, collected())
        if not missing:
            return
        self.store.update_tasks(plan.job_id, {index: {"outputs": None} for index in missing})
        files = [name for names in missing.values() for name in names]
        raise OutputsKept(f"collected outputs vanished from {plan.results_dir} and could not be collected again: "
                          f"{', '.join(files[:5])}{f' and {len(files) - 5} more' if len(files) > 5 else ''}",
                          hint=f"they are kept at site {site.name}: squall job attach {plan.job_id} --results DIR")

    def _store_collected(self, plan: JobPlan, collected: list) -> None:
        updates = {}
        tasks = {t.idx: t for t in self.store.tasks(plan.job_id)}
        for item in collected:
            tail = _stderr_tail(plan.results_dir / "meta" / f"task-{item.index}" / "stderr.log")
            updates[item.index] = {"outputs": item.files, "stderr_tail": tail}
            task = tasks.get(item.index)
            if item.error and not (task and task.status == TaskStatus.CANCELLED):
                updates[item.index]["status"] = TaskStatus.FAILED
                updates[item.index]["error"] = (task.error if task else None) or item.error
            self.store.record(
                plan.job_id, "collect", "task", index=item.index, files=item.files, bytes=item.bytes, error=item.error
            )
        if updates:
            self.store.update_tasks(plan.job_id, updates)

    def _salvage(self, plan: JobPlan, site: Site) -> bool:
        """After a failure or interrupt: stop the tasks, keep what they produced (from every host that
        answers); False when the site, or a host of it, could not be asked (those tasks' ends are unknown)."""
        try:
            site.cancel(plan)
            deadline = time.monotonic() + SALVAGE_WAIT
            states = site.poll([plan])[plan.job_id]
            # only started tasks can still write outputs: never wait for ones that never started
            started = (TaskStatus.QUEUED, TaskStatus.RUNNING)
            while any(s.state in started for s in states) and time.monotonic() < deadline:
                time.sleep(site.poll_interval)
                states = site.poll([plan])[plan.job_id]
            self._save_states(plan, states, {})
            done = {t.idx for t in self.store.tasks(plan.job_id) if t.outputs is not None}
            finished = [s.index for s in states if s.final and s.index not in done]
            self._store_collected(plan, site.collect(plan, finished, self.reporter))
        except HomeUnusable:
            raise  # nothing can be journaled: the job stops where it is
        except (Interrupted, SquallError, OSError) as exc:
            self.store.record(plan.job_id, "collect", "salvage-skipped", reason=str(exc))
            return False
        return not any(s.state == TaskStatus.LOST for s in states)  # a silent host's tasks: ends unknown

    def _keep_uncollected(self, plan: JobPlan, site: Site, error: str | None, unseen: bool) -> bool:
        """Tasks that ran to an end but whose outputs (and logs) are not in the results folder — or, when
        ``unseen``, launched tasks whose end the site could not tell — keep their files: they are never
        removed.

        The job stays in its collect phase (status ``incomplete``) with its
        leases extended; ``squall job attach ID [--results DIR]`` finishes it.
        """
        waiting = [t.idx for t in self.store.tasks(plan.job_id)
                   if t.outputs is None and (t.status in RAN or (unseen and t.status not in FINAL))]
        if not waiting:
            return False
        until = time.time() + keep_uncollected()
        try:
            site.keep(plan, until)
        except (SquallError, OSError) as exc:  # nothing was removed either way
            self.store.record(plan.job_id, "down", "error", message=str(exc))
        self.store.extend_leases(plan.job_id, until)
        kept = (f"outputs of {len(waiting)} finished task(s) not collected; kept at site {site.name} until "
                f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(until))}: "
                f"'squall job attach {plan.job_id} [--results DIR]' collects them")
        message = f"{error}; {kept}" if error else kept
        self.store.record(plan.job_id, "down", "kept", tasks=waiting, until=until)
        self.store.update_job(plan.job_id, phase="collect", status="incomplete", error=message)
        if plan.results_dir.is_dir():
            write_report(plan.results_dir, JobResult.load(self.store, plan.job_id).to_dict())
        self.reporter.phase(plan.job_id, "incomplete")
        return True

    def _down(self, plan: JobPlan, site: Site, error: str | None) -> str | None:
        """Remove what the job made at its site; a site that does not answer (an sshd restarting) is asked
        again after growing pauses while the job's leases last. Still unreachable (or refused for another
        reason, such as a host given up on), the job records what it left there: the leases stay, and gc
        removes it."""
        self._enter(plan, "down")
        for pause in (*DOWN_PAUSES, None):
            try:
                site.down(plan)
                break
            except Interrupted:
                raise
            except (SquallError, OSError) as exc:
                self.store.record(plan.job_id, "down", "error", message=str(exc))
                leases = self.store.leases(job_id=plan.job_id)
                until = max((lease.expires_at for lease in leases), default=time.time())
                transient = isinstance(exc, (SiteUnreachable, OSError))
                if pause is None or not transient or time.time() + pause >= until:
                    self.store.record(plan.job_id, "down", "left", resources=[lease.resource for lease in leases],
                                      until=until)
                    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(until))
                    return (f"{error + '; ' if error else ''}down failed: {exc}; what the job made is still at site "
                            f"{site.name} (squall gc removes it once its lease ends, {when})")
                time.sleep(pause)
        for lease in self.store.leases(job_id=plan.job_id):
            self.store.release_lease(lease.id)
        self.store.record(plan.job_id, "down", "end")
        return error

    def _finish(self, plan: JobPlan, error: str | None, interrupted: bool) -> None:
        job = self.store.job(plan.job_id)
        close_job(self.store, plan.job_id, error, cancelled=interrupted or bool(job and job.cancel_requested))
        if job is not None and is_upload(self.home, job.spec_dir):  # submitted to the server: its files go now
            shutil.rmtree(job.spec_dir, ignore_errors=True)
        self._notify(plan.job_id, "finished")
        self.reporter.phase(plan.job_id, "done")


def _blame_the_site(states: list[TaskState]) -> None:
    """A task cancelled while Squall asked nothing of the kind was cancelled at the site (its admin's
    scancel, a preemption): said at once, with what the scheduler said."""
    for state in states:
        if state.state == TaskStatus.CANCELLED and not (state.error or "").startswith("cancelled at the site"):
            said = f": {state.error}" if state.error else ""
            state.error = f"cancelled at the site, not by Squall (exit {state.exit_code}){said}"


def _stderr_tail(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - STDERR_TAIL))
            return handle.read().decode(errors="replace") or None
    except FileNotFoundError:
        return None

"""What every batch-scheduler executor shares: a job is one array named ``squall-<job id>``, submitted from
the login node through the runtime's scheduler module, whose owner tags ride with it.

An executor for a scheduler subclasses ``BatchExecutor`` in
``squall/sites/executors/<scheduler>.py`` (``EXECUTOR = ThatClass``) and ships
``squall/runtime/schedulers/<scheduler>.py`` to the site with the runtime; the
``hpc`` kind finds both by the inventory's ``squall_scheduler``. The
runtime's status files say exactly what a task did; the scheduler's records say
what the runtime cannot (a task still pending, or ended by the scheduler before
or while it ran): each subclass reads its own records (``tasks_of``,
``task_state``). One agent call polls every job at the site.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from squall.env_seconds import env_seconds
from squall.errors import Refused, SiteUnreachable
from squall.inventory import Partition, SiteVars
from squall.job_types import JobPlan, TaskState, TaskStatus
from squall.money.site_limits import SiteLimit
from squall.sites.contract import Capability, LiveResource, owner_tags
from squall.sites.executors.contract import Executor
from squall.sites.executors.runtime_status import status_state, vanished
from squall.sites.executors.silence import Silence
from squall.sites.transports.contract import HostFacts
from squall.sites.transports.ssh import RemoteHost
from squall.sites.workarea import KILL_GRACE, lease_margin
from squall.spec import parse_walltime

SCHEDULER_MARGIN = 30  # the scheduler's limit is the walltime plus this: the runtime times out first
LOST_AFTER = 120  # seconds after launch with neither a scheduler record nor a runtime status (while it answers)


def lost_after() -> float:
    """Seconds after launch that a task the scheduler no longer lists and the runtime never started is lost."""
    return env_seconds("SQUALL_SLURM_LOST_AFTER", LOST_AFTER)


class BatchExecutor(Executor):
    scheduler: str  # the runtime's scheduler module (``schedulers/<scheduler>.py``)
    title: str  # how people name the scheduler ("Slurm")
    asked: str  # the command whose silence a poll reports ("scontrol")
    queue_word = "partition"  # what the scheduler calls the inventory's squall_partitions
    capabilities = frozenset({Capability.CONTAINERS, Capability.GPUS, Capability.MULTI_NODE})

    def __init__(self, site: str, hosts: list[RemoteHost], site_vars: SiteVars, user: str):
        super().__init__(site, hosts)
        self.login = hosts[0]
        self.site_vars = site_vars
        self.user = user
        self._ahead: dict[tuple[str, str], Future] = {}  # answers asked ahead (``prefetch``), by job and kind
        self.silence: Silence | None = None  # since when the scheduler has not answered a poll

    # what the subclass knows of its scheduler ---------------------------------

    @abstractmethod
    def batch_script(self, plan: JobPlan, expires: float) -> str:
        """The array's batch script (its template under ``templates/<scheduler>/``)."""

    @abstractmethod
    def tasks_of(self, records: list[dict]) -> dict[str, dict[int, dict]]:
        """The scheduler's records by job name and task index (Squall's, from 0)."""

    @abstractmethod
    def task_state(self, index: int, status: dict | None, record: dict | None, lost: bool) -> TaskState:
        """Combine the runtime's status (exact) with the scheduler's record (for what the runtime cannot say)."""

    def _queue_wait(self, plan: JobPlan) -> tuple[float, str]:
        return 0.0, f"{self.title} gives no start-time estimate"

    def _site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        return [], f"{self.title}: no account limits are read"

    # shared -------------------------------------------------------------------

    def check(self, plan: JobPlan, facts: dict[str, HostFacts]) -> None:
        self.partition_for(plan)

    def partition_for(self, plan: JobPlan) -> Partition:
        res = plan.spec.resources
        reasons = []
        for partition in self.site_vars.squall_partitions:
            if res.walltime_seconds > parse_walltime(partition.max_walltime):
                reasons.append(f"{partition.name}: walltime above {partition.max_walltime}")
            elif res.cpus_per_node > partition.max_cpus_per_task:
                reasons.append(f"{partition.name}: more than {partition.max_cpus_per_task} cpus")
            elif res.nodes > partition.max_nodes:
                reasons.append(f"{partition.name}: at most {partition.max_nodes} node(s) per task, not {res.nodes}")
            elif res.gpus and (partition.name not in self.site_vars.squall_gpu_partitions
                               or res.gpus > partition.gpus_per_node):
                reasons.append(f"{partition.name}: not {res.gpus} GPUs")
            else:
                return partition
        default = "walltime" not in res.model_fields_set and any("walltime above" in r for r in reasons)
        raise Refused(f"resources: no {self.queue_word} of site {self.site!r} fits ({'; '.join(reasons)})",
                      hint=f"the spec gives no walltime, so the default {res.walltime} applies: set "
                           "resources.walltime" if default else None)

    def max_duration(self, plan: JobPlan) -> float:
        return plan.walltime + SCHEDULER_MARGIN + KILL_GRACE

    def partition(self, plan: JobPlan) -> Partition:
        return self.partition_for(plan)

    def rendered_script(self, plan: JobPlan) -> str:
        return self.batch_script(plan, time.time() + self.max_duration(plan))

    def prefetch(self, plan: JobPlan) -> None:
        """Ask the scheduler when the job would start and under which limits while the hosts are being
        checked: the round trips overlap instead of following one another."""
        pool = ThreadPoolExecutor(2)
        self._ahead[(plan.job_id, "wait")] = pool.submit(self._queue_wait, plan)
        self._ahead[(plan.job_id, "limits")] = pool.submit(self._site_limits, plan)
        pool.shutdown(wait=False)

    def _answer(self, plan: JobPlan | None, what: str, ask: Callable):
        ahead = self._ahead.pop((plan.job_id, what), None) if plan else None
        return ahead.result() if ahead is not None else ask(plan)

    def queue_wait(self, plan: JobPlan) -> tuple[float, str]:
        return self._answer(plan, "wait", self._queue_wait)

    def site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        return self._answer(plan, "limits", self._site_limits)

    def placement(self, plan: JobPlan) -> dict[int, RemoteHost]:
        return {task.index: self.login for task in plan.tasks}

    def claims(self, plan: JobPlan) -> list[tuple[str, str]]:
        return [(self.scheduler, array_name(plan))]  # the array launch will submit under this name

    def job_files(self, plan: JobPlan, host: RemoteHost, expires: float) -> dict[str, tuple[bytes, int]]:
        return {"job.sh": (self.batch_script(plan, expires).encode(), 0o700)}

    def owner_comment(self, plan: JobPlan, expires: float) -> str:
        """The owner tags the array carries (another store's gc reads them): ``key=value,...``."""
        tags = plan.tags
        return (f"squall-job={plan.job_id},org={tags['squall:org']},project={tags['squall:project']},"
                f"store={tags['squall:store']},expires={int(expires)}")

    def launch(self, plan: JobPlan) -> dict:
        """One array for every task; a job already submitted under this name is never submitted again."""
        answer = self.login.agent("submit", self.scheduler, self.login.job_dir(plan.job_id), array_name(plan))
        return {f"{self.scheduler}_job": answer["scheduler_job"],
                **({"resubmitted": False} if "resubmitted" in answer else {})}

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        answer = self.login.agent("poll", self.scheduler, *[self.login.job_dir(p.job_id) for p in plans])
        if answer.get("scheduler") is None:
            return self._poll_without_scheduler(plans, answer)
        self.silence = None
        by_name = self.tasks_of(answer["scheduler"])
        result = {}
        for plan in plans:
            job = answer["jobs"].get(self.login.job_dir(plan.job_id))
            if job is None:  # every job polled was launched: its folder existed
                result[plan.job_id] = self._vanished(plan)
                continue
            records = by_name.get(array_name(plan), {})
            lost = job["launched_at"] is not None and answer["now"] - job["launched_at"] > lost_after()
            result[plan.job_id] = [self.task_state(t.index, job["tasks"].get(str(t.index)), records.get(t.index),
                                                   lost) for t in plan.tasks]
        return result

    def _vanished(self, plan: JobPlan) -> list[TaskState]:
        message = vanished(self.login, plan, self.site)
        return [TaskState(t.index, TaskStatus.FAILED, error=message, job_error=message) for t in plan.tasks]

    def _poll_without_scheduler(self, plans: list[JobPlan], answer: dict) -> dict[str, list[TaskState]]:
        """The scheduler did not answer (its controller restarting): the runtime's status files still say what
        each started task did; a task without one is ``lost`` until it answers again, never failed for want of
        a record. Silent for longer than the tasks could run, the site is unreachable and the job waits for
        ``attach``."""
        why = f"{self.asked}: {answer.get('scheduler_silent') or 'no answer'}"
        if self.silence is None:
            self.silence = Silence(time.monotonic(), time.time(), why,
                                   max(self.max_duration(p) for p in plans) + lease_margin())
        self.silence.why = why
        if self.silence.over():
            raise SiteUnreachable(f"site {self.site}: {self.title} has not answered since {self.silence.shown()}, "
                                  f"longer than the tasks could run ({why})",
                                  hint=f"everything is left at the site: 'squall job attach ID' once {self.title} "
                                       "answers")
        result = {}
        for plan in plans:
            job = answer["jobs"].get(self.login.job_dir(plan.job_id))
            if job is None:
                result[plan.job_id] = self._vanished(plan)
                continue
            result[plan.job_id] = [
                status_state(t.index, status) if (status := job["tasks"].get(str(t.index))) is not None
                else TaskState(t.index, TaskStatus.LOST,
                               error=f"{self.title} has not answered since {self.silence.shown()} ({why}); Squall "
                                     "asks again and concludes nothing about the task until it answers")
                for t in plan.tasks
            ]
        return result

    def cancel(self, plan: JobPlan) -> None:
        self.login.agent("teardown", self.scheduler, array_name(plan))

    def stop(self, plan: JobPlan, remove: bool) -> None:
        """Cancel whatever still runs and remove the job folder, in one remote call."""
        folder = [self.login.job_dir(plan.job_id)] if remove else []
        self.login.agent("teardown", self.scheduler, array_name(plan), *folder)

    def scheduler_jobs(self, host: RemoteHost, listing: dict) -> list[LiveResource]:
        live = []
        for j in listing["jobs"]:
            tags = dict(part.split("=", 1) for part in j["comment"].split(",") if "=" in part)
            live.append(LiveResource(self.site, self.scheduler, j["name"], j["name"].removeprefix("squall-"),
                                     {f"{self.scheduler}_job": j["id"], "comment": j["comment"], "state": j["state"]},
                                     *owner_tags(tags.get("store"), tags.get("expires"))))
        return live

    def remove_scheduler_job(self, resource: LiveResource) -> None:
        self.login.agent("teardown", self.scheduler, resource.resource)


def array_name(plan: JobPlan) -> str:
    return f"squall-{plan.job_id}"

"""The Slurm executor: every task of a job is one element of a job array, submitted from the login node.

The array is named ``squall-<job-id>`` and its comment carries the owner
tags. The runtime's status files say exactly what a task did; Slurm's own
records say what the runtime cannot (a task still pending, or killed by
Slurm before or while it ran). One agent call polls every job at the site.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from squall.errors import Refused, SiteUnreachable
from squall.inventory import Partition, SiteVars
from squall.job_types import JobPlan, TaskState
from squall.sites.contract import Capability, LiveResource, owner_tags
from squall.sites.executors.contract import Executor
from squall.sites.transports.ssh import RemoteHost
from squall.sites.executors.runtime_status import status_state, vanished
from squall.sites.executors.silence import Silence
from squall.sites.transports.contract import HostFacts
from squall.money.site_limits import SiteLimit
from squall.sites.executors.slurm_limits import parse_associations, site_limits
from squall.slurm_options import merged, quoted_setup
from squall.spec import parse_walltime
from squall.templating import templates
from squall.job_types import TaskStatus
from squall.sites.workarea import KILL_GRACE, lease_margin

DISK_FULL_EXIT = 28  # the runtime's exit when not even a task's status could be written (squall_runtime.py)
SLURM_MARGIN = 30  # Slurm's limit is the walltime plus this: the runtime times out first
SLURM_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
               "BOOT_FAIL", "DEADLINE"}
LOST_AFTER = 120  # seconds after launch with neither a Slurm record nor a runtime status (while Slurm answers)


def lost_after() -> float:
    """Seconds after launch that a task Slurm no longer lists and the runtime never started counts as lost."""
    return float(os.environ.get("SQUALL_SLURM_LOST_AFTER", LOST_AFTER))


class SlurmExecutor(Executor):
    capabilities = frozenset({Capability.CONTAINERS, Capability.GPUS, Capability.MULTI_NODE})

    def __init__(self, site: str, hosts: list[RemoteHost], site_vars: SiteVars, user: str):
        super().__init__(site, hosts)
        self.login = hosts[0]
        self.site_vars = site_vars
        self.user = user
        self._ahead: dict[tuple[str, str], Future] = {}  # answers asked ahead (``prefetch``), by job and kind
        self.silence: Silence | None = None  # since when Slurm has not answered a poll

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
        raise Refused(f"resources: no partition of site {self.site!r} fits ({'; '.join(reasons)})",
                      hint=f"the spec gives no walltime, so the default {res.walltime} applies: set "
                           "resources.walltime" if default else None)

    def max_duration(self, plan: JobPlan) -> float:
        return plan.walltime + SLURM_MARGIN + KILL_GRACE

    def partition(self, plan: JobPlan) -> Partition:
        return self.partition_for(plan)

    def rendered_script(self, plan: JobPlan) -> str:
        return self.batch_script(plan, time.time() + self.max_duration(plan))

    def prefetch(self, plan: JobPlan) -> None:
        """Ask Slurm when the job would start and under which association limits while the hosts are being
        checked: the three round trips overlap instead of following one another."""
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

    def _queue_wait(self, plan: JobPlan) -> tuple[float, str]:
        """Slurm's own answer: the job's batch script through ``sbatch --test-only`` (the agent submits nothing)."""
        answer = self.login.agent("test-only", stdin=self.rendered_script(plan).encode())
        if answer["wait_s"] is None:
            return 0.0, f"sbatch --test-only gave no start time: {answer['message'][:200]}"
        return float(answer["wait_s"]), f"sbatch --test-only: {answer['message'][:200]}"

    def _site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        """The association's limits the job would run under (its account and partition, else the site's
        default account and first partition), read through the agent."""
        answer = self.login.agent("limits")
        if answer["records"] is None:
            return [], f"no Slurm association limits: {answer['message'][:200]}"
        options = merged(self.site_vars.squall_slurm, plan.spec.slurm if plan else None)
        partition = self.partition_for(plan) if plan else self.site_vars.squall_partitions[0]
        limits = site_limits(parse_associations(answer["records"]), options.account, partition.name)
        return limits, "scontrol show assoc_mgr (Slurm associations)"

    def placement(self, plan: JobPlan) -> dict[int, RemoteHost]:
        return {task.index: self.login for task in plan.tasks}

    def claims(self, plan: JobPlan) -> list[tuple[str, str]]:
        return [("slurm", f"squall-{plan.job_id}")]  # the array launch will submit under this name

    def job_files(self, plan: JobPlan, host: RemoteHost, expires: float) -> dict[str, tuple[bytes, int]]:
        return {"job.sh": (self.batch_script(plan, expires).encode(), 0o700)}

    def batch_script(self, plan: JobPlan, expires: float) -> str:
        res = plan.spec.resources
        tags = plan.tags
        comment = (f"squall-job={plan.job_id},org={tags['squall:org']},project={tags['squall:project']},"
                   f"store={tags['squall:store']},expires={int(expires)}")
        seconds = plan.walltime + SLURM_MARGIN
        partition = self.partition_for(plan)
        site = self.site_vars.squall_slurm
        return templates().get_template("slurm/array.sh.j2").render(
            job_id=plan.job_id, slurm_name=f"squall-{plan.job_id}", comment=comment, tasks=len(plan.tasks),
            partition=partition.name, cpus=res.cpus, nodes=res.nodes, tasks_per_node=res.tasks_per_node,
            memory_mb=(res.memory_bytes or 0) // (1 << 20), gpus=res.gpus,
            slurm_time=f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
            job_dir=self.login.job_dir(plan.job_id), runtime=self.login.runtime(),
            slurm=merged(site, plan.spec.slurm),
            setup=quoted_setup([*(site.setup if site else []), *partition.setup]),
        )

    def task_fields(self, plan: JobPlan, host: RemoteHost, index: int) -> dict:
        """The variables the site's set-up lines set that the payload needs (the runtime passes them on)."""
        site = self.site_vars.squall_slurm
        fields: dict = {"keep_env": list(site.keep_env)} if site and site.keep_env else {}
        if plan.spec.mpi:
            fields["launcher"] = list(self.site_vars.squall_mpi_launcher)
        elif plan.spec.resources.multi_rank:
            fields["launcher"] = ["srun"]
        return fields

    def launch(self, plan: JobPlan) -> dict:
        """One array for every task; a job already submitted under this name is never submitted again."""
        return self.login.agent("submit", self.login.job_dir(plan.job_id), f"squall-{plan.job_id}")

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        answer = self.login.agent("poll", *[self.login.job_dir(p.job_id) for p in plans])
        if answer.get("slurm") is None:
            return self._poll_without_slurm(plans, answer)
        self.silence = None
        slurm: dict[str, dict[int, dict]] = {}
        for record in answer["slurm"]:
            for index in _array_indexes(record.get("ArrayTaskId")):
                slurm.setdefault(record["JobName"], {})[index] = record
        result = {}
        for plan in plans:
            job = answer["jobs"].get(self.login.job_dir(plan.job_id))
            if job is None:  # every job polled was launched: its folder existed
                message = vanished(self.login, plan, self.site)
                result[plan.job_id] = [TaskState(t.index, TaskStatus.FAILED, error=message, job_error=message)
                                       for t in plan.tasks]
                continue
            records = slurm.get(f"squall-{plan.job_id}", {})
            lost = job["launched_at"] is not None and answer["now"] - job["launched_at"] > lost_after()
            result[plan.job_id] = [
                _task_state(t.index, job["tasks"].get(str(t.index)), records.get(t.index), lost)
                for t in plan.tasks
            ]
        return result

    def _poll_without_slurm(self, plans: list[JobPlan], answer: dict) -> dict[str, list[TaskState]]:
        """Slurm did not answer (slurmctld restarting): the runtime's status files still say what each started
        task did; a task without one is ``lost`` until Slurm answers again, never failed for want of a record.
        Silent for longer than the tasks could run, the site is unreachable and the job waits for ``attach``."""
        why = f"scontrol: {answer.get('slurm_silent') or 'no answer'}"
        if self.silence is None:
            self.silence = Silence(time.monotonic(), time.time(), why,
                                   max(self.max_duration(p) for p in plans) + lease_margin())
        self.silence.why = why
        if self.silence.over():
            raise SiteUnreachable(f"site {self.site}: Slurm has not answered since {self.silence.shown()}, longer "
                                  f"than the tasks could run ({why})",
                                  hint="everything is left at the site: 'squall job attach ID' once Slurm answers")
        result = {}
        for plan in plans:
            job = answer["jobs"].get(self.login.job_dir(plan.job_id))
            if job is None:
                message = vanished(self.login, plan, self.site)
                result[plan.job_id] = [TaskState(t.index, TaskStatus.FAILED, error=message, job_error=message)
                                       for t in plan.tasks]
                continue
            result[plan.job_id] = [
                status_state(t.index, status) if (status := job["tasks"].get(str(t.index))) is not None
                else TaskState(t.index, TaskStatus.LOST,
                               error=f"Slurm has not answered since {self.silence.shown()} ({why}); Squall asks "
                                     "again and concludes nothing about the task until it answers")
                for t in plan.tasks
            ]
        return result

    def cancel(self, plan: JobPlan) -> None:
        self.login.ssh.run(["scancel", f"--name=squall-{plan.job_id}", f"--user={self.user}"])

    def stop(self, plan: JobPlan, remove: bool) -> None:
        """Cancel whatever still runs and remove the job folder, in one remote call."""
        folder = [self.login.job_dir(plan.job_id)] if remove else []
        self.login.agent("teardown", f"squall-{plan.job_id}", *folder)

    def scheduler_jobs(self, host: RemoteHost, listing: dict) -> list[LiveResource]:
        live = []
        for j in listing["jobs"]:
            tags = dict(part.split("=", 1) for part in j["comment"].split(",") if "=" in part)
            live.append(LiveResource(self.site, "slurm", j["name"], j["name"].removeprefix("squall-"),
                                     {"slurm_job": j["id"], "comment": j["comment"], "state": j["state"]},
                                     *owner_tags(tags.get("store"), tags.get("expires"))))
        return live

    def remove_scheduler_job(self, resource: LiveResource) -> None:
        self.login.ssh.run(["scancel", f"--name={resource.resource}", f"--user={self.user}"])


def _array_indexes(text: str | None) -> list[int]:
    """``"3"`` -> [3]; ``"0-3%2"`` or ``"1,4-5"`` -> every index named."""
    if not text or text == "N/A":
        return []
    indexes: list[int] = []
    for part in text.split("%")[0].strip("[]").split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            indexes.extend(range(int(low), int(high) + 1))
        elif part.isdigit():
            indexes.append(int(part))
    return indexes


def _task_state(index: int, status: dict | None, record: dict | None, lost: bool) -> TaskState:
    """Combine the runtime's status (exact) with Slurm's state (for what the runtime cannot say)."""
    slurm_state = (record or {}).get("JobState")
    if status is not None:
        state = status_state(index, status)
        if not state.final and slurm_state in SLURM_ENDED:
            state.state = _slurm_final(slurm_state)
            state.error = f"Slurm ended the task: {slurm_state}"
            if (record or {}).get("ExitCode", "").split(":")[0] == str(DISK_FULL_EXIT):
                state.error = ("no space left on device: the runtime could not even write the task's status; "
                               "free space in the site's work root or ask the site for more quota")
        elif state.state == TaskStatus.CANCELLED and slurm_state and not state.error:
            reason = (record or {}).get("Reason")
            state.error = f"Slurm: {slurm_state}" + (f" ({reason})" if reason and reason != "None" else "")
        return state
    if slurm_state in SLURM_ENDED:
        return TaskState(index, _slurm_final(slurm_state), error=f"Slurm: {slurm_state} ({record.get('Reason')}) before the runtime ran")
    if slurm_state in ("PENDING", "CONFIGURING", "REQUEUED"):
        return TaskState(index, TaskStatus.QUEUED)
    if slurm_state:
        return TaskState(index, TaskStatus.RUNNING)
    if lost:
        return TaskState(index, TaskStatus.FAILED, error="neither Slurm nor the runtime knows this task any more")
    return TaskState(index, TaskStatus.PENDING)


def _slurm_final(slurm_state: str) -> TaskStatus:
    return {"TIMEOUT": TaskStatus.TIMEOUT, "CANCELLED": TaskStatus.CANCELLED}.get(slurm_state, TaskStatus.FAILED)

"""The Slurm executor: every task of a job is one element of a job array, submitted from the login node.

The array is named ``squall-<job-id>`` and its comment carries the owner
tags. Slurm's records (``scontrol show job``, through the runtime's
``schedulers/slurm.py``) are read here; what every batch scheduler shares is
in ``batch.py``.
"""

from __future__ import annotations

from squall.job_types import JobPlan, TaskState, TaskStatus
from squall.money.site_limits import SiteLimit
from squall.sites.executors.batch import SCHEDULER_MARGIN, BatchExecutor, array_name
from squall.sites.executors.runtime_status import status_state
from squall.sites.executors.slurm_limits import parse_associations, site_limits
from squall.sites.transports.ssh import RemoteHost
from squall.slurm_options import merged, quoted_setup
from squall.templating import templates

DISK_FULL_EXIT = 28  # the runtime's exit when not even a task's status could be written (squall_runtime.py)
SLURM_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
               "BOOT_FAIL", "DEADLINE"}


class SlurmExecutor(BatchExecutor):
    scheduler = "slurm"
    title = "Slurm"
    asked = "scontrol"

    def _queue_wait(self, plan: JobPlan) -> tuple[float, str]:
        """Slurm's own answer: the job's batch script through ``sbatch --test-only`` (the agent submits nothing)."""
        answer = self.login.agent("test-only", self.scheduler, stdin=self.rendered_script(plan).encode())
        if answer["wait_s"] is None:
            return 0.0, f"sbatch --test-only gave no start time: {answer['message'][:200]}"
        return float(answer["wait_s"]), f"sbatch --test-only: {answer['message'][:200]}"

    def _site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        """The association's limits the job would run under (its account and partition, else the site's
        default account and first partition), read through the agent."""
        answer = self.login.agent("limits", self.scheduler)
        if answer["records"] is None:
            return [], f"no Slurm association limits: {answer['message'][:200]}"
        options = merged(self.site_vars.squall_slurm, plan.spec.slurm if plan else None)
        partition = self.partition_for(plan) if plan else self.site_vars.squall_partitions[0]
        limits = site_limits(parse_associations(answer["records"]), options.account, partition.name)
        return limits, "scontrol show assoc_mgr (Slurm associations)"

    def batch_script(self, plan: JobPlan, expires: float) -> str:
        res = plan.spec.resources
        seconds = plan.walltime + SCHEDULER_MARGIN
        partition = self.partition_for(plan)
        site = self.site_vars.squall_slurm
        return templates().get_template("slurm/array.sh.j2").render(
            job_id=plan.job_id, slurm_name=array_name(plan), comment=self.owner_comment(plan, expires),
            tasks=len(plan.tasks), partition=partition.name, cpus=res.cpus, nodes=res.nodes,
            tasks_per_node=res.tasks_per_node, memory_mb=(res.memory_bytes or 0) // (1 << 20), gpus=res.gpus,
            slurm_time=f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
            job_dir=self.login.job_dir(plan.job_id), runtime=self.login.runtime(),
            slurm=merged(site, plan.spec.slurm),
            setup=quoted_setup([*(site.setup if site else []), *partition.setup]),
        )

    def task_fields(self, plan: JobPlan, host: RemoteHost, index: int) -> dict:
        """The variables the site's set-up lines set that the payload needs (the runtime passes them on); a
        task of several ranks starts them through ``srun`` (or the site's MPI launcher), which needs this
        allocation's ``SLURM_*`` and hands the ranks the runtime's scrubbed environment (not sbatch's NIL)."""
        site = self.site_vars.squall_slurm
        fields: dict = {"keep_env": list(site.keep_env)} if site and site.keep_env else {}
        if plan.spec.mpi:
            fields["launcher"] = list(self.site_vars.squall_mpi_launcher)
        elif plan.spec.resources.multi_rank:
            fields["launcher"] = ["srun"]
        if "launcher" in fields:
            fields.update(launcher_env_prefixes=["SLURM_"], launcher_env={"SLURM_EXPORT_ENV": "ALL"})
        return fields

    def tasks_of(self, records: list[dict]) -> dict[str, dict[int, dict]]:
        found: dict[str, dict[int, dict]] = {}
        for record in records:
            for index in _array_indexes(record.get("ArrayTaskId")):
                found.setdefault(record["JobName"], {})[index] = record
        return found

    def task_state(self, index: int, status: dict | None, record: dict | None, lost: bool) -> TaskState:
        return _task_state(index, status, record, lost)


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
        return TaskState(index, _slurm_final(slurm_state),
                         error=f"Slurm: {slurm_state} ({record.get('Reason')}) before the runtime ran")
    if slurm_state in ("PENDING", "CONFIGURING", "REQUEUED"):
        return TaskState(index, TaskStatus.QUEUED)
    if slurm_state:
        return TaskState(index, TaskStatus.RUNNING)
    if lost:
        return TaskState(index, TaskStatus.FAILED, error="neither Slurm nor the runtime knows this task any more")
    return TaskState(index, TaskStatus.PENDING)


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


def _slurm_final(slurm_state: str) -> TaskStatus:
    return {"TIMEOUT": TaskStatus.TIMEOUT, "CANCELLED": TaskStatus.CANCELLED}.get(slurm_state, TaskStatus.FAILED)


EXECUTOR = SlurmExecutor

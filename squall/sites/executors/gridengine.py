"""The Grid Engine executor: every task of a job is one task of an array job (``qsub -t 1-N``), submitted
from the submit host through the runtime's ``schedulers/gridengine.py``.

The array is named ``squall-<job-id>`` and its context (``-ac``) carries the
owner tags. The inventory's ``squall_partitions`` are Grid Engine's cluster
queues (``-q``); the walltime is a hard runtime limit (``h_rt``); a cancel
(``qdel``) warns the runtime first (``-notify``: SIGUSR2), so the task ends
"cancelled", not killed unheard; a task of
several cpus asks the parallel environment ``smp`` (the name Debian's and
most sites' configurations give the one-host environment). Grid Engine lists a task only while
it waits or runs, so its records only add "queued", "running" and "in error".
"""

from __future__ import annotations

from squall.errors import Refused
from squall.job_types import JobPlan, TaskState, TaskStatus
from squall.sites.contract import Capability
from squall.sites.executors.batch import SCHEDULER_MARGIN, BatchExecutor, array_name
from squall.sites.executors.runtime_status import status_state
from squall.slurm_options import quoted_setup
from squall.templating import templates

PENDING = {"qw", "hqw", "hRqw", "Rq"}  # waiting (held or rescheduled included)
PARALLEL_ENVIRONMENT = "smp"  # a task's cpus on one host
IN_ERROR = "E"  # "Eqw": Grid Engine could not start the task (a bad queue, an unreadable folder...)


class GridEngineExecutor(BatchExecutor):
    scheduler = "gridengine"
    title = "Grid Engine"
    asked = "qstat"
    queue_word = "queue"
    capabilities = frozenset({Capability.CONTAINERS})

    def check(self, plan: JobPlan, facts: dict) -> None:
        """A spec's Slurm options would be silently lost here: refused (placement then looks elsewhere)."""
        if plan.spec.slurm is not None:
            raise Refused(f"slurm: site {self.site!r} runs Grid Engine; the spec's Slurm options do not apply there",
                          hint="drop the spec's slurm: block, or run it on a Slurm site")
        super().check(plan, facts)

    def batch_script(self, plan: JobPlan, expires: float) -> str:
        res = plan.spec.resources
        seconds = plan.walltime + SCHEDULER_MARGIN
        queue = self.partition_for(plan)
        return templates().get_template("gridengine/array.sh.j2").render(
            job_id=plan.job_id, name=array_name(plan), context=self.owner_comment(plan, expires),
            tasks=len(plan.tasks), queue=queue.name, cpus=res.cpus,
            parallel_environment=PARALLEL_ENVIRONMENT,
            hard_runtime=f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
            job_dir=self.login.job_dir(plan.job_id), runtime=self.login.runtime(),
            setup=quoted_setup(queue.setup),
        )

    def task_fields(self, plan: JobPlan, host, index: int) -> dict:
        """``qdel`` kills a task outright unless it was submitted with ``-notify``: then Grid Engine sends
        SIGUSR2 first (the queue's ``notify`` time before the kill), which the runtime takes as a stop."""
        return {"stop_signals": ["USR2"]}

    def tasks_of(self, records: list[dict]) -> dict[str, dict[int, dict]]:
        found: dict[str, dict[int, dict]] = {}
        for record in records:
            for task in _task_ids(record.get("Tasks")):
                found.setdefault(record["JobName"], {})[task - 1] = record
        return found

    def task_state(self, index: int, status: dict | None, record: dict | None, lost: bool) -> TaskState:
        state = (record or {}).get("State", "")
        if status is not None:
            return status_state(index, status)
        if IN_ERROR in state:
            return TaskState(index, TaskStatus.FAILED, error=f"Grid Engine could not start the task (state {state}); "
                                                             "'qstat -j' on the site says why")
        if state in PENDING or state.endswith("qw"):
            return TaskState(index, TaskStatus.QUEUED)
        if state:
            return TaskState(index, TaskStatus.RUNNING)
        if lost:
            return TaskState(index, TaskStatus.FAILED,
                             error="neither Grid Engine nor the runtime knows this task any more")
        return TaskState(index, TaskStatus.PENDING)


def _task_ids(text: str | None) -> list[int]:
    """Grid Engine's task list: ``"3"`` -> [3]; ``"1-7:2"`` -> [1, 3, 5, 7]; ``"1,4-5:1"`` -> [1, 4, 5]."""
    ids: list[int] = []
    for part in (text or "").split(","):
        span, _, step = part.partition(":")
        low, _, high = span.partition("-")
        if low.isdigit():
            ids.extend(range(int(low), int(high or low) + 1, int(step) if step.isdigit() and int(step) > 0 else 1))
    return ids


EXECUTOR = GridEngineExecutor

"""What an executor is: it starts, watches and stops a job's tasks on the hosts its transport reaches
(``squall.sites.transports.contract``). A site kind chooses one (``squall.sites``): runtime slots (local,
ssh, cloud), a batch scheduler's arrays (hpc: ``batch`` with ``slurm`` or ``gridengine``), an Indexed Job
(kubernetes)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from squall.inventory import Partition
from squall.money.site_limits import SiteLimit
from squall.job_types import JobPlan, TaskState
from squall.sites.contract import Capability, LiveResource
from squall.sites.transports.contract import HostFacts, Transport


class Executor(ABC):
    """Starts, watches and stops a job's tasks on the site's hosts."""

    capabilities: frozenset[Capability] = frozenset()
    heartbeat = 5.0  # seconds between the runtime's status heartbeats
    scheduler: str | None = None  # the runtime's scheduler module the hosts' agent asks (None: no scheduler)

    def __init__(self, site: str, hosts: list[Transport]):
        self.site = site
        self.hosts = hosts
        self.lost: dict[str, str] = {}  # host name -> why it stopped answering (not asked again by this controller)

    @abstractmethod
    def check(self, plan: JobPlan, facts: dict[str, HostFacts]) -> None:
        """Raise ``Refused`` if the job's resources fit nowhere here; create nothing."""

    @abstractmethod
    def max_duration(self, plan: JobPlan) -> float: ...

    def prefetch(self, plan: JobPlan) -> None:
        """Start asking, in the background, what ``quote`` will need (called as the site is checked)."""

    @abstractmethod
    def placement(self, plan: JobPlan) -> dict[int, Transport]:
        """The host that holds each task's folder; deterministic, so a resumed controller finds the same."""

    def claims(self, plan: JobPlan) -> list[tuple[str, str]]:
        """What ``launch`` will create at the scheduler, to lease before it exists (kind, name)."""
        return []

    def by_host(self, plan: JobPlan, indexes: list[int] | None = None) -> dict[Transport, list[int]]:
        """The tasks (all, or ``indexes``) grouped by the host that holds them."""
        placement = self.placement(plan)
        hosts: dict[Transport, list[int]] = {}
        for index in placement if indexes is None else indexes:
            hosts.setdefault(placement[index], []).append(index)
        return hosts

    def holders(self, plan: JobPlan) -> dict[Transport, list[int]]:
        """Every host that holds a folder of each task: its runner (``by_host``) and, for a task spanning
        several hosts, the others (staged, authorised and removed with it, never started or collected)."""
        return self.by_host(plan)

    def prepare(self, plan: JobPlan) -> None:
        """After staging: what the tasks need between hosts (a multi-node task's peers let its runner in)."""

    def partition(self, plan: JobPlan) -> Partition | None:
        """The scheduler partition the job would run in (None: no scheduler)."""
        return None

    def concurrency(self, plan: JobPlan) -> int | None:
        """Tasks of ``plan`` that can run at once here (None: as many as the scheduler's limits allow)."""
        return None

    def queue_wait(self, plan: JobPlan) -> tuple[float, str]:
        """Seconds until the job would start, and how that is known."""
        return 0.0, "runtime slots: tasks start as slots free up"

    def rendered_script(self, plan: JobPlan) -> str | None:
        """The batch script launch would submit (for a dry run); None without a scheduler."""
        return None

    def site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        """The scheduler's own limits on this job (``None``: on a job with the site's defaults), and where
        they come from or why there are none."""
        return [], "no scheduler: no limits of its own"

    def job_files(self, plan: JobPlan, host: Transport, expires: float) -> dict[str, tuple[bytes, int]]:
        """Files besides the task folders that ``host`` needs in the job folder (a batch script)."""
        return {}

    def task_fields(self, plan: JobPlan, host: Transport, index: int) -> dict:
        """What this executor adds to task ``index``'s ``task.json`` on ``host`` (slot locks, a launcher)."""
        return {}

    @abstractmethod
    def launch(self, plan: JobPlan) -> dict:
        """Start every task; idempotent (tasks already started are left alone)."""

    @abstractmethod
    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        """Every task of several jobs, with one remote call per host."""

    @abstractmethod
    def cancel(self, plan: JobPlan) -> None: ...

    @abstractmethod
    def stop(self, plan: JobPlan, remove: bool) -> None:
        """Stop what still runs on every host; remove the job folders if ``remove``; try every host."""

    def scheduler_jobs(self, host: Transport, listing: dict) -> list[LiveResource]:
        """The scheduler's jobs in a host's agent ``inventory`` answer."""
        return []

    def remove_scheduler_job(self, resource: LiveResource) -> None:
        raise NotImplementedError(resource.kind)

"""The contract every site kind implements, with typed data in and out.

A site declares what it cannot do through ``capabilities`` and ``check``
before anything is created, instead of failing deep inside a phase.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from squall.errors import Refused
from squall.slugs import SLUG
from squall.job_types import CollectedTask, JobPlan, TaskState

if TYPE_CHECKING:  # the CLI imports this module at start-up; pydantic is slow to load
    from squall.money.quotes import Quote
    from squall.money.site_limits import SiteLimit


class Capability(enum.Enum):
    CONTAINERS = "containers"
    GPUS = "gpus"
    NETWORK_ISOLATION = "network-isolation"
    MULTI_NODE = "multi-node"  # starts a task's processes over several nodes (nodes, tasks_per_node, mpi)


@dataclass(frozen=True)
class LiveResource:
    """Something Squall owns that really exists at a site, found by tag or name."""

    site: str
    kind: str
    resource: str
    job_id: str | None
    detail: dict = field(default_factory=dict)
    store_id: str | None = None  # the store its owner tags name; None: no owner tags (not known to be ours)
    expires_at: float | None = None  # the expiry its owner tags carry


def owner_tags(store_id: object, expires: object) -> tuple[str | None, float | None]:
    """Owner tags as found at the site (anyone with the account can write them): checked, never trusted."""
    store = store_id if isinstance(store_id, str) and SLUG.fullmatch(store_id) else None
    try:
        return store, float(expires)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return store, None


# Called by ``up`` just before it creates a resource, so the lease is in the
# store before the resource exists anywhere.
Claim = Callable[[str, str], None]


class Reporter:
    """Progress callbacks from the core; the CLI renders them. All optional."""

    def admitted(self, placement: Any, estimate: dict) -> None:
        """Where the job goes and why (a ``squall.placement.Placement``: placement sits above the sites, so it
        is not named here), and its estimate (``SiteEstimate.to_dict``), before anything is created."""

    def phase(self, job_id: str, phase: str) -> None: ...

    def bytes_staged(self, done: int, total: int) -> None: ...

    def tasks(self, states: list[TaskState]) -> None: ...


class Site(ABC):
    """One place jobs run: the kinds are registered in ``squall.sites`` (local, hpc, cloud, ssh, kubernetes)."""

    kind: str
    capabilities: frozenset[Capability] = frozenset()
    poll_interval = 0.2  # seconds between status polls while monitoring
    max_concurrent_jobs: int | None = None  # the site's own cap on unfinished jobs (None: none)
    shared_poll = False  # True: polling costs a remote call, share one per interval across controllers

    def __init__(self, name: str):
        self.name = name

    @abstractmethod
    def check(self, plan: JobPlan) -> None:
        """Raise a ``SquallError`` if this site cannot run ``plan``; create nothing."""

    @abstractmethod
    def max_duration(self, plan: JobPlan) -> float:
        """Seconds the job may take once launched, at most (for lease expiry)."""

    def quote(self, plan: JobPlan) -> Quote:
        """Price model, energy figures and likely start of ``plan`` here (after ``check``); by default the site
        states no price (unpriced) and starts at once."""
        from squall.money.quotes import Quote

        return Quote(price=None)

    def check_processes(self, plan: JobPlan) -> None:
        """Refuse (exit 4) a task of several processes where the site starts one process per task, or in a
        container (not supported yet)."""
        res = plan.spec.resources
        if (res.multi_rank or plan.spec.mpi) and Capability.MULTI_NODE not in self.capabilities:
            raise Refused(f"resources.nodes: site {self.name!r} starts one process per task; this job asks "
                          f"{res.nodes} node(s) x {res.tasks_per_node} process(es)"
                          + (" with MPI" if plan.spec.mpi else ""),
                          hint="run it on a Slurm site with a partition that allows it (max_nodes)")
        if plan.spec.image and res.multi_rank:
            raise Refused(f"image: site {self.name!r} runs a task of several processes without a container "
                          "(MPI in containers is not supported yet)")

    def own_limits(self) -> tuple[list[SiteLimit], str]:
        """The site's own limits on a job with its defaults (``squall quota show --site``), and their source
        or why there are none."""
        return [], f"a {self.kind} site states no limits of its own"

    def rendered_script(self, plan: JobPlan) -> str | None:
        """The batch script ``launch`` would submit, for ``job run --dry-run`` (None: the site has none)."""
        return None

    @abstractmethod
    def up(self, plan: JobPlan, claim: Claim) -> None: ...

    @abstractmethod
    def stage(self, plan: JobPlan, reporter: Reporter) -> None: ...

    @abstractmethod
    def launch(self, plan: JobPlan) -> dict:
        """Start every task; idempotent (tasks already started are left alone)."""

    @abstractmethod
    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        """States of every task of several jobs, in as few remote calls as possible."""

    def wait(self, plans: list[JobPlan], timeout: float) -> bool:
        """Block until a task may have changed state (True: poll now, not from a shared answer), or
        ``timeout`` seconds (False).

        Sites that can be woken (a process exit, a status file replaced on a
        host) override this; the others wait for their next poll interval.
        """
        time.sleep(timeout)
        return False

    @abstractmethod
    def cancel(self, plan: JobPlan) -> None: ...

    @abstractmethod
    def collect(self, plan: JobPlan, indexes: list[int], reporter: Reporter) -> list[CollectedTask]: ...

    @abstractmethod
    def down(self, plan: JobPlan) -> None:
        """Remove everything ``up`` created; safe to call twice or after a partial up."""

    def keep(self, plan: JobPlan, until: float) -> None:
        """Stop the job's tasks but keep its files until ``until`` (outputs not collected yet).

        Sites whose tasks leave no files to collect have nothing to keep.
        """
        self.down(plan)

    @abstractmethod
    def live_resources(self) -> list[LiveResource]:
        """What Squall holds at this site right now (job folders, scheduler jobs, stacks), with owner tags."""

    @abstractmethod
    def remove(self, resource: LiveResource) -> None:
        """Stop and delete one orphaned resource (used by the garbage collector)."""

    def close(self) -> None:
        """Release connections; the site object is not used afterwards."""

    @abstractmethod
    def read_log(self, plan: JobPlan, index: int, stream: str, offset: int) -> bytes | None:
        """A running task's ``stdout``/``stderr`` from ``offset``; None once the work area is gone."""

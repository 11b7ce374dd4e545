"""What a provisioner is: what is made around a job before staging and destroyed after it — nothing (local,
hpc, ssh), a job stack or a claimed bank VM (cloud), a Kubernetes job stack."""

from __future__ import annotations

from typing import TYPE_CHECKING

from squall.job_types import JobPlan
from squall.money.site_limits import SiteLimit
from squall.sites.contract import Claim, LiveResource

if TYPE_CHECKING:
    from squall.money.quotes import Quote
    from squall.sites.transports.contract import Transport


class Provisioner:
    """What is created around a job before staging and destroyed after it. The base creates nothing.

    A provisioner that makes the job's machines (``makes_hosts``) hands them to the site as that job's hosts:
    ``up`` returns them, ``hosts`` finds them again, and the job is planned and priced by it (``max_duration``,
    ``quote``), since there is nothing to ask before they exist.
    """

    makes_hosts = False

    def check(self, plan: JobPlan) -> None:
        """Raise a ``SquallError`` if nothing can be created for ``plan``."""

    def site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        """The limits of whatever this provisioner creates in (a cloud project's), and their source."""
        return [], "creates nothing: no limits of its own"

    def max_duration(self, plan: JobPlan) -> float | None:
        """The longest the job can take here, machines included (None: as the executor says)."""
        return None

    def quote(self, plan: JobPlan) -> Quote | None:
        """The job's price, start and limits here (None: as the executor and the site's terms say)."""
        return None

    def up(self, plan: JobPlan, claim: Claim) -> list[Transport] | None:
        """Create what the job needs, each thing claimed (leased) before it exists; the job's hosts if it
        made them (None: the site's own)."""
        return None

    def hosts(self, plan: JobPlan) -> list[Transport]:
        """The hosts ``up`` made for the job, found again (only for a provisioner that ``makes_hosts``)."""
        raise NotImplementedError

    def has_hosts(self, plan: JobPlan) -> bool:
        """Whether the job's machines exist (so there is something to stop before ``down``)."""
        return False

    def down(self, plan: JobPlan) -> None:
        """Destroy what ``up`` created; safe to call twice or after a partial ``up``."""

    def keep(self, plan: JobPlan) -> None:
        """Outputs were not collected: keep what holds them for ``squall job attach`` (machines the job
        made); destroy the rest. The base made nothing."""
        self.down(plan)

    def close(self) -> None:
        """Let go of connections to what it made (it stays)."""

    def live_resources(self) -> list[LiveResource]:
        return []

    def remove(self, resource: LiveResource) -> bool:
        """Destroy one orphaned resource of this provisioner's; False if it is not one."""
        return False

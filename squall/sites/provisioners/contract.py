"""What a provisioner is: what is made around a job before staging and destroyed after it — nothing (local,
hpc, ssh), a job stack or a claimed bank VM (cloud), a Kubernetes job stack."""

from __future__ import annotations

from squall.money.site_limits import SiteLimit
from squall.job_types import JobPlan
from squall.sites.contract import Claim, LiveResource


class Provisioner:
    """What is created around a job before staging and destroyed after it. The base creates nothing."""

    def check(self, plan: JobPlan) -> None:
        """Raise a ``SquallError`` if nothing can be created for ``plan``."""

    def site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        """The limits of whatever this provisioner creates in (a cloud project's), and their source."""
        return [], "creates nothing: no limits of its own"

    def up(self, plan: JobPlan, claim: Claim) -> None:
        """Create what the job needs, each thing claimed (leased) before it exists."""

    def down(self, plan: JobPlan) -> None:
        """Destroy what ``up`` created; safe to call twice or after a partial ``up``."""

    def live_resources(self) -> list[LiveResource]:
        return []

    def remove(self, resource: LiveResource) -> bool:
        """Destroy one orphaned resource of this provisioner's; False if it is not one."""
        return False

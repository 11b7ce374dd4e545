"""The ``cloud`` kind: a job's machines behind the organisation's head node (``cloud_site``), made by a job
stack or claimed from an idle bank."""

from __future__ import annotations

from pathlib import Path

from squall.inventory import InventoryRules, SiteVars, no_scheduler
from squall.sites.registry import SiteKind, register


def check(site_vars: SiteVars) -> None:
    if not site_vars.squall_org_stack:
        raise ValueError("squall_org_stack: a cloud site names its organisation's stack (<org>.org.<name>), "
                         "and only a cloud site does")
    no_scheduler(site_vars, "cloud")


def open_cloud(name: str, home: Path, store, config: dict, inventory):
    from squall.infra.driver import StackName, engine_for
    from squall.sites.kinds.cloud_site import CloudSite
    from squall.sites.provisioners.job_stack import JobStackProvisioner

    org_stack, engine, site_vars = StackName.parse(inventory.vars.squall_org_stack), engine_for(home), inventory.vars

    def provisioner_for(probe):
        if not site_vars.squall_bank:
            return JobStackProvisioner(name, store, org_stack, engine)
        from squall.infra.bank import Banks
        from squall.infra.orgs import Orgs
        from squall.sites.provisioners.bank import BankProvisioner

        return BankProvisioner(name, store, org_stack, site_vars.squall_bank, Banks(store, Orgs(store, engine), probe),
                               site_vars.squall_node_user, site_vars.squall_node_work_root)

    return CloudSite(name, home, store, inventory, provisioner_for)


register(SiteKind("cloud", open_cloud, inventory=InventoryRules(check)))

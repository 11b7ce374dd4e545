"""The ``cloud`` kind: each job runs on machines made for it behind the organisation's head node, as parts:
provisioner = the job's machines (``provisioners/job_machines.py``), made by a job stack of the organisation
(``job_stack``) or claimed from its idle bank (``bank``); transport = SSH to them through the head node
(``transports/through_head.py``); executor = the runtime's slots on them, no scheduler."""

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
    from squall.sites.assembled import AssembledSite, SiteTerms
    from squall.sites.executors.slots import SlotsExecutor
    from squall.sites.provisioners.job_machines import JobMachines
    from squall.sites.provisioners.job_stack import JobStackProvisioner
    from squall.sites.transports.through_head import ThroughHead

    org_stack, engine, site_vars = StackName.parse(inventory.vars.squall_org_stack), engine_for(home), inventory.vars
    reach = ThroughHead(name, home, inventory)
    if not site_vars.squall_bank:
        maker = JobStackProvisioner(name, store, org_stack, engine)
    else:
        from squall.infra.bank import Banks
        from squall.infra.orgs import Orgs
        from squall.sites.provisioners.bank import BankProvisioner

        maker = BankProvisioner(name, store, org_stack, site_vars.squall_bank,
                                Banks(store, Orgs(store, engine), reach.reachable), site_vars.squall_node_user,
                                site_vars.squall_node_work_root)
    return AssembledSite(name, "cloud", store, [], SlotsExecutor(name, []),
                         JobMachines(name, store, site_vars, maker, reach), SiteTerms.of(site_vars),
                         executor_for=lambda hosts: SlotsExecutor(name, hosts))


register(SiteKind("cloud", open_cloud, inventory=InventoryRules(check)))

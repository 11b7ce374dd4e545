"""The ``hpc`` kind: a batch-scheduled cluster's login node over SSH, from the site's enrolled inventory.

The inventory's ``squall_scheduler`` names the scheduler; its executor is
``squall.sites.executors.<scheduler>`` (``EXECUTOR``), and the runtime ships
``schedulers/<scheduler>.py`` to the site: adding a scheduler touches neither
this file nor the registry.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from squall.inventory import InventoryRules, SiteVars, no_organisation
from squall.sites.registry import SiteKind, register


def check(site_vars: SiteVars) -> None:
    no_organisation(site_vars)
    if site_vars.squall_scheduler == "none":
        raise ValueError("squall_scheduler: a hpc site runs a batch scheduler (squall_scheduler: slurm, "
                         "gridengine, ...)")
    if not site_vars.squall_partitions:
        raise ValueError("squall_partitions: give at least one partition (or queue)")


def scheduler_executor(name: str, hosts: list, inventory):
    """The executor of the site's scheduler, found by its name."""
    module = importlib.import_module(f"squall.sites.executors.{inventory.vars.squall_scheduler}")
    return module.EXECUTOR(name, hosts, inventory.vars, inventory.login.ansible_user)


def open_hpc(name: str, home: Path, store, config: dict, inventory):
    from squall.sites.assembled import open_inventory_site

    return open_inventory_site(name, home, store, inventory, scheduler_executor)


register(SiteKind("hpc", open_hpc, inventory=InventoryRules(check)))

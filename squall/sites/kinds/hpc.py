"""The ``hpc`` kind: a Slurm cluster's login node over SSH, from the site's enrolled inventory."""

from __future__ import annotations

from pathlib import Path

from squall.inventory import InventoryRules, SiteVars, no_organisation
from squall.sites.registry import SiteKind, register


def check(site_vars: SiteVars) -> None:
    no_organisation(site_vars)
    if site_vars.squall_scheduler != "slurm":
        raise ValueError("squall_scheduler: a hpc site runs Slurm (squall_scheduler: slurm)")
    if not site_vars.squall_partitions:
        raise ValueError("squall_partitions: give at least one partition")


def slurm_executor(name: str, hosts: list, inventory):
    from squall.sites.executors.slurm import SlurmExecutor

    return SlurmExecutor(name, hosts, inventory.vars, inventory.login.ansible_user)


def open_hpc(name: str, home: Path, store, config: dict, inventory):
    from squall.sites.assembled import open_inventory_site

    return open_inventory_site(name, home, store, inventory, slurm_executor)


register(SiteKind("hpc", open_hpc, inventory=InventoryRules(check)))

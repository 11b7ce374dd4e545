"""The ``ssh`` kind: plain machines over SSH (behind a jump host or not), their tasks in runtime slots; its
inventory lists them in the ``nodes`` group."""

from __future__ import annotations

from pathlib import Path

from squall.inventory import InventoryRules, SiteVars, no_organisation, no_scheduler
from squall.sites.registry import SiteKind, register


def check(site_vars: SiteVars) -> None:
    no_organisation(site_vars)
    no_scheduler(site_vars, "ssh")


def slots_executor(name: str, hosts: list, inventory):
    from squall.sites.executors.slots import SlotsExecutor

    return SlotsExecutor(name, hosts)


def open_ssh(name: str, home: Path, store, config: dict, inventory):
    from squall.sites.assembled import open_inventory_site

    return open_inventory_site(name, home, store, inventory, slots_executor)


register(SiteKind("ssh", open_ssh, inventory=InventoryRules(check, host_group="nodes")))

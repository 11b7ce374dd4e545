"""The ``hpc`` kind: a Slurm cluster's login node over SSH, from the site's enrolled inventory."""

from __future__ import annotations

from pathlib import Path

from squall.sites.registry import SiteKind, register


def slurm_executor(name: str, hosts: list, inventory):
    from squall.sites.executors.slurm import SlurmExecutor

    return SlurmExecutor(name, hosts, inventory.vars, inventory.login.ansible_user)


def open_hpc(name: str, home: Path, store, config: dict):
    from squall.sites.assembled import open_inventory_site

    return open_inventory_site(name, home, store, slurm_executor)


register(SiteKind("hpc", open_hpc))

"""The ``ssh`` kind: plain machines over SSH (behind a jump host or not), their tasks in runtime slots."""

from __future__ import annotations

from pathlib import Path

from squall.sites.registry import SiteKind, register


def slots_executor(name: str, hosts: list, inventory):
    from squall.sites.executors.slots import SlotsExecutor

    return SlotsExecutor(name, hosts)


def open_ssh(name: str, home: Path, store, config: dict):
    from squall.sites.assembled import open_inventory_site

    return open_inventory_site(name, home, store, slots_executor)


register(SiteKind("ssh", open_ssh))

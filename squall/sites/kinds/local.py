"""The ``local`` kind: this machine, built in as the site ``local`` (``local_site``)."""

from __future__ import annotations

from pathlib import Path

from squall.sites.registry import SiteKind, register


def open_local(name: str, home: Path, store, config: dict, inventory):
    from squall.sites.kinds.local_site import open_local_site

    return open_local_site(name, home, store)


register(SiteKind("local", open_local, builtin_site="local"))

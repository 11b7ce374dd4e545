"""The ``kubernetes`` kind: each job an Indexed Job in the organisation's namespace (``kubernetes_site``)."""

from __future__ import annotations

from pathlib import Path

from squall.sites.registry import SiteKind, register


def open_kubernetes(name: str, home: Path, store, config: dict, inventory):
    from squall.sites.kinds.kubernetes_site import open_kubernetes_site

    return open_kubernetes_site(name, home, store, config)


register(SiteKind("kubernetes", open_kubernetes))

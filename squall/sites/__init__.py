"""Site kinds and how a site name becomes a ``Site`` object."""

from __future__ import annotations

import difflib
from pathlib import Path

from squall.errors import InvalidInput
from squall.sites.base import Site
from squall.store import Store

BUILTIN = {"local": "local"}


def open_site(name: str, home: Path, store: Store) -> Site:
    """The site called ``name``; ``auto`` picks the built-in local site for now."""
    if name == "auto":
        name = "local"
    kind = BUILTIN.get(name) or {n: k for n, k, _ in store.sites()}.get(name)
    if kind == "local":
        from squall.sites.local import LocalSite

        store.ensure_site(name, "local")
        return LocalSite(name, home, store)
    known = sorted(set(BUILTIN) | {n for n, _, _ in store.sites()})
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known sites: {', '.join(known)}"
    raise InvalidInput(f"site: {name!r} is not a known site", hint=hint)


def all_sites(home: Path, store: Store) -> list[Site]:
    names = set(BUILTIN) | {n for n, _, _ in store.sites()}
    return [open_site(name, home, store) for name in sorted(names)]

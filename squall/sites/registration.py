"""Which sites exist and how a name becomes a ``Site``: the built-in sites of the registered kinds, the sites
registered in the store (``site add``, enrolment, or a job submitted to a site found by name in the inventory
search path: ``remember_site``), and the one list of all of them (``all_sites``) that every command, the
server and gc read. Opening a site writes nothing.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from squall.errors import InvalidInput, NotFound, Refused, SquallError
from squall.inventory import SiteInventory
from squall.job_types import AUTO
from squall.sites.contract import Site
from squall.sites.inventories import load_site_inventory, resolve_site
import squall.sites.kinds  # noqa: F401 - registers the built-in kinds
from squall.sites.registry import KINDS
from squall.store import Store


def builtin_sites() -> dict[str, str]:
    """Built-in site name -> its kind."""
    return {kind.builtin_site: kind.name for kind in KINDS.values() if kind.builtin_site}


def all_sites(store: Store) -> dict[str, str]:
    """Every site by name -> its kind: the built-in ones and those registered in the store."""
    return {**builtin_sites(), **{name: kind for name, kind, _ in store.sites()}}


def check_site_name(name: str) -> None:
    """A name a user may register: not a built-in site's, not ``auto``."""
    if name == AUTO or name in builtin_sites():
        raise InvalidInput(f"site name {name!r} is reserved")


def add_site(store: Store, name: str, folder: Path) -> SiteInventory:
    check_site_name(name)
    inventory = load_site_inventory(name, folder)
    store.set_site(name, inventory.vars.squall_kind, {"inventory": str(inventory.folder)})
    return inventory


def remove_site(store: Store, name: str) -> None:
    """Forget a registered site; refused while jobs there are not finished (their leases need it)."""
    if name not in {n for n, _, _ in store.sites()}:
        raise NotFound(f"site {name!r} is not registered", hint="'squall site list' shows the registered sites")
    unfinished = [j.id for j in store.jobs(None, site=name) if not j.finished]
    if unfinished:
        raise Refused(f"site {name!r} has {len(unfinished)} unfinished job(s): {', '.join(unfinished[:3])}",
                      hint="wait for them, or 'squall job cancel ID'")
    store.remove_site(name)


def open_site(name: str, home: Path, store: Store) -> Site:
    """The site called ``name`` (``auto`` is decided by ``squall.placement`` before this)."""
    registered = {n: (k, c) for n, k, c in store.sites()}
    builtin = builtin_sites()
    if name in builtin:
        kind, config = builtin[name], {}
    elif name in registered:
        kind, config = registered[name]
    else:
        kind, config = _discovered_kind(store, name), {}
    if kind is None:
        known = sorted(all_sites(store))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known sites: {', '.join(known)}"
        raise InvalidInput(f"site: {name!r} is not a known site", hint=hint)
    if kind not in KINDS:
        raise Refused(f"site: {name!r} is a {kind} site; this version cannot run jobs there")
    inventory = resolve_site(store, name, register=False) if KINDS[kind].inventory is not None else None
    return KINDS[kind].open(name, home, store, config, inventory)


def remember_site(store: Store, name: str) -> None:
    """Register a site found by name in the inventory search path, once a job is submitted there: its jobs
    (``attach``, ``gc``) then find the same inventory from any folder."""
    if name not in builtin_sites() and name not in {n for n, _, _ in store.sites()}:
        resolve_site(store, name, register=True)


def _discovered_kind(store: Store, name: str) -> str | None:
    """The kind of a site whose inventory folder is in the search path (not registered: looking writes nothing)."""
    try:
        return resolve_site(store, name, register=False).vars.squall_kind
    except NotFound:
        return None


def open_sites(home: Path, store: Store) -> tuple[list[Site], list[tuple[str, str]]]:
    """Every site with a lifecycle (for the garbage collector), and those that cannot be opened, with why.

    One broken registration (an inventory folder deleted or made invalid)
    must not stop the collection at every other site.
    """
    kinds = all_sites(store)
    sites, broken = [], []
    for name, kind in sorted(kinds.items()):
        if kind not in KINDS:
            continue
        try:
            sites.append(open_site(name, home, store))
        except SquallError as exc:
            broken.append((name, exc.message))
    return sites, broken

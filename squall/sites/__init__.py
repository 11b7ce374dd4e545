"""Site kinds and how a site name becomes a ``Site`` object."""

from __future__ import annotations

import difflib
from pathlib import Path

from squall.errors import InvalidInput, Refused, SquallError
from squall.sites.base import Site
from squall.store import Store

BUILTIN = {"local": "local"}
RUNNABLE_KINDS = {"local", "hpc", "cloud", "kubernetes"}  # kinds with a job lifecycle implemented


def open_site(name: str, home: Path, store: Store) -> Site:
    """The site called ``name``; ``auto`` picks the built-in local site for now."""
    if name == "auto":
        name = "local"
    registered = {n: k for n, k, _ in store.sites()}
    kind = BUILTIN.get(name) or registered.get(name) or _discovered_kind(store, name)
    if kind == "kubernetes":
        from squall.infra.driver import StackName, engine_for
        from squall.sites.kubernetes import KubernetesSite
        from squall.sites.kubernetes_api import ClusterJobApi

        config = {n: c for n, _, c in store.sites()}[name]
        return KubernetesSite(name, home, store, StackName.parse(config["org_stack"]), engine_for(home),
                              ClusterJobApi(config.get("context")))
    if kind == "local":
        from squall.sites.local import LocalSite

        store.ensure_site(name, "local")
        return LocalSite(name, home, store)
    if kind == "hpc":
        from squall.enrolment import resolve_site
        from squall.sites.hpc import HpcSite

        return HpcSite(name, home, store, resolve_site(store, name))
    if kind == "cloud":
        from squall.enrolment import resolve_site
        from squall.infra.driver import engine_for
        from squall.sites.cloud import CloudSite

        return CloudSite(name, home, store, resolve_site(store, name), engine_for(home))
    if kind is not None:
        raise Refused(f"site: {name!r} is a {kind} site; this version cannot run jobs there")
    known = sorted(set(BUILTIN) | set(registered))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known sites: {', '.join(known)}"
    raise InvalidInput(f"site: {name!r} is not a known site", hint=hint)


def _discovered_kind(store: Store, name: str) -> str | None:
    """An HPC or cloud site whose inventory folder is in the search path is registered on first use."""
    from squall.enrolment import resolve_site
    from squall.errors import NotFound

    try:
        return resolve_site(store, name).vars.squall_kind
    except NotFound:
        return None


def open_sites(home: Path, store: Store) -> tuple[list[Site], list[tuple[str, str]]]:
    """Every site with a lifecycle (for the garbage collector), and those that cannot be opened, with why.

    One broken registration (an inventory folder deleted or made invalid)
    must not stop the collection at every other site.
    """
    kinds = {**BUILTIN, **{n: k for n, k, _ in store.sites()}}
    sites, broken = [], []
    for name, kind in sorted(kinds.items()):
        if kind not in RUNNABLE_KINDS:
            continue
        try:
            sites.append(open_site(name, home, store))
        except SquallError as exc:
            broken.append((name, exc.message))
    return sites, broken

"""Site kinds, one registry of them, and how a site name becomes a ``Site`` object.

Each kind registers how to open one of its sites from a registration (name,
home, store, the site's stored config). A kind may bring a built-in site
that needs no registration (``local``). Adding a kind means writing its
module and one ``register`` line here — nothing else names the kinds.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from squall.errors import InvalidInput, Refused, SquallError
from squall.placement import AUTO
from squall.sites.base import Site
from squall.store import Store

Opener = Callable[[str, Path, Store, dict], Site]


@dataclass(frozen=True)
class SiteKind:
    name: str
    open: Opener
    builtin_site: str | None = None  # a site of this kind that exists without registration


KINDS: dict[str, SiteKind] = {}


def register(kind: SiteKind) -> None:
    KINDS[kind.name] = kind


def _open_local(name: str, home: Path, store: Store, config: dict) -> Site:
    from squall.sites.local import open_local

    return open_local(name, home, store)


def _ssh_hosts(name: str, home: Path, store: Store, inventory) -> list:
    """The inventory's hosts as SSH transports (through its jump host, if any)."""
    from squall.sites.remote_host import RemoteHost
    from squall.sites.ssh_session import JumpConnection, SshSession

    hop = inventory.vars.squall_jump_host
    jump = JumpConnection(hop.hop, home / "known_hosts") if hop else None  # one connection for every host

    def note_retry(what: str, error: Exception) -> None:
        store.record(None, "ssh", "retry", site=name, action=what, error=repr(error))

    return [RemoteHost(host_name, SshSession(host.ansible_host, host.ansible_port, host.ansible_user,
                                             inventory.key_of(host), home / "known_hosts", on_retry=note_retry,
                                             jump=jump),
                       inventory.vars.squall_work_root,
                       {key: getattr(host, f"squall_{key}", None) for key in ("cpus", "memory_mb", "gpus")})
            for host_name, host in inventory.hosts]


def _open_remote(name: str, home: Path, store: Store, executor) -> Site:
    """A site of SSH hosts from its inventory: ``executor(name, hosts, inventory)`` starts its tasks."""
    from squall.enrolment import resolve_site
    from squall.sites.parts import Provisioner
    from squall.sites.assembled import AssembledSite, SiteTerms

    inventory = resolve_site(store, name)
    hosts = _ssh_hosts(name, home, store, inventory)
    return AssembledSite(name, inventory.vars.squall_kind, store, hosts, executor(name, hosts, inventory),
                         Provisioner(), SiteTerms.of(inventory.vars))


def _slurm(name: str, hosts: list, inventory):
    from squall.sites.slurm import SlurmExecutor

    return SlurmExecutor(name, hosts, inventory.vars, inventory.login.ansible_user)


def _slots(name: str, hosts: list, inventory):
    from squall.sites.slots import SlotsExecutor

    return SlotsExecutor(name, hosts)


def _open_hpc(name: str, home: Path, store: Store, config: dict) -> Site:
    return _open_remote(name, home, store, _slurm)


def _open_ssh(name: str, home: Path, store: Store, config: dict) -> Site:
    return _open_remote(name, home, store, _slots)


def _open_cloud(name: str, home: Path, store: Store, config: dict) -> Site:
    from squall.enrolment import resolve_site
    from squall.infra.driver import StackName, engine_for
    from squall.sites.cloud import CloudSite
    from squall.sites.job_stack import JobStackProvisioner

    inventory = resolve_site(store, name)
    org_stack, engine, site_vars = StackName.parse(inventory.vars.squall_org_stack), engine_for(home), inventory.vars

    def provisioner_for(probe):
        if not site_vars.squall_bank:
            return JobStackProvisioner(name, store, org_stack, engine)
        from squall.infra.bank import Banks
        from squall.infra.orgs import Orgs
        from squall.sites.bank_host import BankProvisioner

        return BankProvisioner(name, store, org_stack, site_vars.squall_bank, Banks(store, Orgs(store, engine), probe),
                               site_vars.squall_node_user, site_vars.squall_node_work_root)

    return CloudSite(name, home, store, inventory, provisioner_for)


def _open_kubernetes(name: str, home: Path, store: Store, config: dict) -> Site:
    from squall.sites.kubernetes import open_kubernetes

    return open_kubernetes(name, home, store, config)


register(SiteKind("local", _open_local, builtin_site="local"))
register(SiteKind("hpc", _open_hpc))
register(SiteKind("cloud", _open_cloud))
register(SiteKind("ssh", _open_ssh))
register(SiteKind("kubernetes", _open_kubernetes))


def builtin_sites() -> dict[str, str]:
    """Built-in site name -> its kind."""
    return {kind.builtin_site: kind.name for kind in KINDS.values() if kind.builtin_site}


def check_site_name(name: str) -> None:
    """A name a user may register: not a built-in site's, not ``auto``."""
    if name == AUTO or name in builtin_sites():
        raise InvalidInput(f"site name {name!r} is reserved")


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
        known = sorted(set(builtin) | set(registered))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known sites: {', '.join(known)}"
        raise InvalidInput(f"site: {name!r} is not a known site", hint=hint)
    if kind not in KINDS:
        raise Refused(f"site: {name!r} is a {kind} site; this version cannot run jobs there")
    return KINDS[kind].open(name, home, store, config)


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
    kinds = {**builtin_sites(), **{n: k for n, k, _ in store.sites()}}
    sites, broken = [], []
    for name, kind in sorted(kinds.items()):
        if kind not in KINDS:
            continue
        try:
            sites.append(open_site(name, home, store))
        except SquallError as exc:
            broken.append((name, exc.message))
    return sites, broken

"""The ``local`` kind: this machine, no daemon, the embedded default — assembled from the local transport
(``LocalHost``), the runtime slots executor shared with ``ssh`` sites, and no provisioner.

Job folders live under ``<home>/sites/<name>/work/squall-<job-id>/``, one
folder per task. Tasks are runtime processes in their own sessions, so they
outlive a crashed controller; the runtime's slot locks keep at most one task
per core (or per ``cpus`` cores) running across every local job, without any
scheduler process. Each payload runs in the sandbox ``squall.sites.transports.sandbox``
finds here; where none can be made, every launch says what is not protected.
Nothing is bought, so jobs here are free; the container
engines are the ones found on this machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from squall.money.prices import Free
from squall.runtime.squall_runtime import CONTAINER_RUNTIMES
from squall.sites.assembled import AssembledSite, SiteTerms
from squall.sites.contract import Capability
from squall.sites.transports.local import LocalHost
from squall.sites.provisioners.contract import Provisioner
from squall.sites.transports.sandbox import LocalSandbox, local_sandbox
from squall.sites.executors.slots import SlotsExecutor
from squall.sites.transports.contract import Transport
from squall.store import Store

# one process per task on one machine: no multi-node tasks, no GPUs lent to Squall
CAPABILITIES = frozenset({Capability.CONTAINERS, Capability.NETWORK_ISOLATION})


class LocalSite(AssembledSite):
    """This machine; ``sandbox`` says how its payloads are shut in (the server offers it to API tokens only
    when there is one)."""

    def __init__(self, name: str, store: Store, hosts: list[Transport], sandbox: LocalSandbox, terms: SiteTerms):
        super().__init__(name, "local", store, hosts, SlotsExecutor(name, hosts, sandbox), Provisioner(), terms)
        self.sandbox = sandbox


def open_local_site(name: str, home: Path, store: Store) -> LocalSite:
    store.ensure_site(name, "local")
    work_root = home / "sites" / name / "work"
    sandbox = local_sandbox().covers(work_root)
    hosts: list[Transport] = [LocalHost(name, work_root)]
    terms = SiteTerms(container_runtimes=tuple(tool for tool in CONTAINER_RUNTIMES if shutil.which(tool)),
                      runtimes_found=True, pricing=lambda partition: Free(), capabilities=CAPABILITIES)
    return LocalSite(name, store, hosts, sandbox, terms)

"""Machines made for one job (a job stack's nodes, a bank VM), reached over SSH through the organisation's head
node as jump host: the transport of the ``cloud`` kind.

Job machines are private: the controller never reaches them directly. Cloud
addresses are reused by other machines, so each job's node keys are pinned in
a ``known_hosts`` of its own (``known_hosts.d/<job id>``), removed with the
job's machines.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from squall.errors import SquallError
from squall.hops import Hop
from squall.inventory import SiteInventory
from squall.sites.transports.ssh import RemoteHost
from squall.sites.transports.ssh_session import JumpConnection, SshSession

ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
WORK_ROOT = re.compile(r"^/[A-Za-z0-9._/-]+$")


class ThroughHead:
    """Hosts of a job's machines, from what made them (``addresses``, ``job_user``, ``work_root``)."""

    def __init__(self, site: str, home: Path, inventory: SiteInventory):
        self.site, self.home = site, home
        head = inventory.login
        self.key = inventory.key_of(head)
        self.node_user = inventory.vars.squall_node_user
        self.jump = JumpConnection(Hop(head.ansible_host, head.ansible_port, head.ansible_user, self.key),
                                   home / "known_hosts")

    def hosts(self, job_id: str, machines: dict) -> list[RemoteHost]:
        """One host per machine address, as the job's account in its work root; refused if what made them
        names an unusable account or folder."""
        user, work_root = machines.get("job_user", "squall"), machines.get("work_root", "")
        if not ACCOUNT.match(str(user)) or not WORK_ROOT.match(str(work_root)) or ".." in str(work_root):
            raise SquallError(f"site {self.site!r}: the job's machines name an unusable account ({user!r}) or "
                              f"work root ({work_root!r})")
        known_hosts = self.known_hosts(job_id)
        known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return [RemoteHost(f"node-{index}", SshSession(str(ipaddress.ip_address(address)), 22, str(user), self.key,
                                                       known_hosts, jump=self.jump), str(work_root))
                for index, address in enumerate(machines["addresses"])]

    def known_hosts(self, job_id: str) -> Path:
        return self.home / "known_hosts.d" / job_id

    def forget(self, job_id: str) -> None:
        """The job's machines are gone: their keys with them."""
        self.known_hosts(job_id).unlink(missing_ok=True)

    def reachable(self, address: str) -> bool:
        """Whether a private machine answers SSH as the job account, asked through the head node."""
        known_hosts = self.home / "known_hosts.d" / f"probe-{ipaddress.ip_address(address)}"
        known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        session = SshSession(str(ipaddress.ip_address(address)), 22, self.node_user, self.key, known_hosts,
                             jump=self.jump)
        try:
            session.run(["true"], retry=False, timeout=30)
            return True
        except SquallError:
            return False
        finally:
            session.close()
            known_hosts.unlink(missing_ok=True)

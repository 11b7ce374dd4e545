"""A cloud site: each job gets an ephemeral job stack of its organisation, and that stack's nodes run it.

The parts: provisioner = the job stack (``JobStackProvisioner``), or a VM
claimed from the organisation's bank (``BankProvisioner``); transport =
SSH to the job's nodes through the organisation's head node (the inventory's
``login`` host) as jump host; executor = runtime slots on the nodes, no
scheduler. The nodes exist only after ``up``, so each job is its own
``AssembledSite`` over that job's nodes, built from the stack's outputs (kept in
the store, so a resumed controller, ``attach`` and ``logs`` find them again).

After the stack is up every node must answer SSH and have finished
cloud-init within ``squall_boot_timeout``; the runtime is pushed and
sha256-checked at staging. Cloud addresses are reused by other machines, so
each job's node keys are pinned in a ``known_hosts`` of its own, removed
with the stack. The stack is destroyed in every case, except when outputs
could not be collected: then the nodes are kept (with the job's leases) for
``squall job attach``, and ``squall gc`` destroys them once the leases expire.
"""

from __future__ import annotations

import ipaddress
import re
import statistics
from pathlib import Path
from typing import Callable

from squall.errors import Refused, SquallError
from squall.inventory import SiteInventory
from squall.money.quotes import Quote
from squall.money.site_limits import SiteLimit
from squall.job_types import CollectedTask, JobPlan, TaskState
from squall.sites.contract import Claim, LiveResource, Reporter, Site
from squall.sites.provisioners.bank import BankProvisioner
from squall.sites.provisioners.boot_wait import wait_for_boot
from squall.sites.provisioners.job_stack import JobStackProvisioner
from squall.sites.provisioners.contract import Provisioner
from squall.sites.assembled import AssembledSite, SiteTerms
from squall.sites.transports.ssh import RemoteHost
from squall.sites.executors.slots import SlotsExecutor
from squall.sites.transports.contract import each_host
from squall.sites.transports.ssh_session import JumpConnection, SshSession
from squall.store import Store
from squall.sites.workarea import KILL_GRACE

DEFAULT_BOOT_S = 90.0  # a Debian image to SSH and cloud-init done, typical on AWS and OpenStack (stated, not measured)
ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
WORK_ROOT = re.compile(r"^/[A-Za-z0-9._/-]+$")


class CloudSite(Site):
    kind = "cloud"
    shared_poll = True
    poll_interval = 1.0
    capabilities = SlotsExecutor.capabilities

    def __init__(self, name: str, home: Path, store: Store, inventory: SiteInventory,
                 provisioner_for: Callable[[Callable[[str], bool]], JobStackProvisioner | BankProvisioner]):
        """``provisioner_for(probe)``: the job stack, or the bank (which probes VMs through this site's head)."""
        super().__init__(name)
        self.home, self.store, self.inventory = home, store, inventory
        self.site_vars = inventory.vars
        self.max_concurrent_jobs = self.site_vars.squall_max_concurrent_jobs
        head = inventory.login
        self.head_key = inventory.key_of(head)
        from squall.hops import Hop

        self.jump = JumpConnection(Hop(head.ansible_host, head.ansible_port, head.ansible_user, self.head_key),
                                   home / "known_hosts")
        self._jobs: dict[str, AssembledSite] = {}
        self.provisioner = provisioner_for(self.reachable)

    def reachable(self, address: str) -> bool:
        """Whether a private machine answers SSH as the job account, asked through the head node."""
        known_hosts = self.home / "known_hosts.d" / f"probe-{ipaddress.ip_address(address)}"
        known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        session = SshSession(str(ipaddress.ip_address(address)), 22, self.site_vars.squall_node_user, self.head_key,
                             known_hosts, jump=self.jump)
        try:
            session.run(["true"], retry=False, timeout=30)
            return True
        except SquallError:
            return False
        finally:
            session.close()
            known_hosts.unlink(missing_ok=True)

    # the job's own site over its nodes -------------------------------------------

    def _job(self, plan: JobPlan) -> AssembledSite:
        if plan.job_id not in self._jobs:
            nodes = self.provisioner.nodes(plan)
            user, work_root = nodes.get("job_user", "squall"), nodes.get("work_root", "")
            if not ACCOUNT.match(str(user)) or not WORK_ROOT.match(str(work_root)) or ".." in str(work_root):
                raise SquallError(f"site {self.name!r}: the job stack's outputs name an unusable account "
                                  f"({user!r}) or work root ({work_root!r})")
            known_hosts = self._known_hosts(plan.job_id)
            known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            hosts = [RemoteHost(f"node-{index}", SshSession(str(ipaddress.ip_address(address)), 22, str(user),
                                                            self.head_key, known_hosts, jump=self.jump),
                                str(work_root))
                     for index, address in enumerate(nodes["addresses"])]
            self._jobs[plan.job_id] = AssembledSite(self.name, self.kind, self.store, hosts,
                                                 SlotsExecutor(self.name, hosts), Provisioner(),
                                                 SiteTerms.of(self.site_vars))
        return self._jobs[plan.job_id]

    def _known_hosts(self, job_id: str) -> Path:
        return self.home / "known_hosts.d" / job_id

    # planning -----------------------------------------------------------------

    def check(self, plan: JobPlan) -> None:
        self.check_processes(plan)
        if plan.spec.image and not self.site_vars.squall_container_runtimes:
            raise Refused(f"runtime: site {self.name!r} allows no container runtime")
        self.provisioner.check(plan)

    def max_duration(self, plan: JobPlan) -> float:
        """Boot, then waves of tasks over the nodes (at least one task at once)."""
        at_once = max(1, self.provisioner.node_count(plan) // plan.spec.resources.nodes)
        return self.site_vars.squall_boot_timeout + -(-len(plan.tasks) // at_once) * (plan.walltime + KILL_GRACE)

    def quote(self, plan: JobPlan) -> Quote:
        from squall.money.site_prices import energy_model, price_model

        wait, source = self.boot_time()
        price = self.provisioner.price(plan) or price_model(self.site_vars, None)  # the org's, else the site's
        limits, limits_source = self.provisioner.site_limits(plan)
        return Quote(price=price, energy=energy_model(self.site_vars), queue_wait_s=wait, queue_source=source,
                     site_limits=tuple(limits), site_limits_source=limits_source)

    def own_limits(self) -> tuple[list[SiteLimit], str]:
        return self.provisioner.site_limits(None)

    def boot_time(self) -> tuple[float, str]:
        """Seconds from creating the machines to all of them answering: the median of this site's last 20
        boot waits (with the stack's creation), else the documented default."""
        rows = self.store.rows(
            "SELECT journal.job_id, journal.phase, journal.event, journal.ts FROM journal JOIN jobs "
            "ON jobs.id = journal.job_id WHERE jobs.site = ? AND ((journal.phase = 'up' AND journal.event = "
            "'begin') OR (journal.phase = 'boot' AND journal.event = 'end')) ORDER BY journal.seq DESC LIMIT 200",
            (self.name,))
        starts = {job: ts for job, phase, _event, ts in rows if phase == "up"}
        waits = [ts - starts[job] for job, phase, _event, ts in rows if phase == "boot" and job in starts][:20]
        if not waits:
            return DEFAULT_BOOT_S, f"cloud boot: documented default {DEFAULT_BOOT_S:.0f} s (no history yet)"
        return statistics.median(waits), f"cloud boot: median of this site's last {len(waits)}"

    # lifecycle ------------------------------------------------------------------

    def up(self, plan: JobPlan, claim: Claim) -> None:
        """The stack, then every node up and booted (or the error naming those that are not), then the folders."""
        self.provisioner.up(plan, claim)
        job = self._job(plan)
        self.store.record(plan.job_id, "boot", "begin", nodes=[str(h) for h in job.hosts])
        seconds = wait_for_boot(job.hosts, self.site_vars.squall_boot_timeout, f"job {plan.job_id}'s nodes")
        self.store.record(plan.job_id, "boot", "end", seconds=round(seconds, 2))
        job.up(plan, claim)

    def stage(self, plan: JobPlan, reporter: Reporter) -> None:
        job = self._job(plan)
        sent = each_host(lambda host, _: host.install_runtime(), {host: None for host in job.hosts})
        self.store.record(plan.job_id, "stage", "runtime", sent=sorted(h.name for h, done in sent.items() if done))
        job.stage(plan, reporter)

    def launch(self, plan: JobPlan) -> dict:
        return self._job(plan).launch(plan)

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        """Each job's nodes are its own: one call per node, every job's at once."""
        by_id = {plan.job_id: plan for plan in plans}
        answers = each_host(lambda job_id, _: self._job(by_id[job_id]).poll([by_id[job_id]]), dict.fromkeys(by_id))
        return {job_id: states for answer in answers.values() for job_id, states in answer.items()}

    def cancel(self, plan: JobPlan) -> None:
        self._job(plan).cancel(plan)

    def collect(self, plan: JobPlan, indexes: list[int], reporter: Reporter) -> list[CollectedTask]:
        return self._job(plan).collect(plan, indexes, reporter)

    def read_log(self, plan: JobPlan, index: int, stream: str, offset: int) -> bytes | None:
        return self._job(plan).read_log(plan, index, stream, offset)

    def down(self, plan: JobPlan) -> None:
        """The stack goes in every case, and its nodes with it. Before, one attempt per node to stop what
        runs and remove the job folder, so nothing runs on if the destroy fails (a node that does not answer
        is not waited for)."""
        try:
            if plan.job_id in self._jobs or self.provisioner.has_nodes(plan):
                each_host(_stop_quickly(plan), {host: None for host in self._job(plan).hosts})
        except SquallError as exc:  # unusable outputs: still destroy
            self.store.record(plan.job_id, "down", "nodes-not-stopped", error=exc.message)
        try:
            self.provisioner.down(plan)
        finally:
            job = self._jobs.pop(plan.job_id, None)
            if job is not None:
                job.close()
            self._known_hosts(plan.job_id).unlink(missing_ok=True)

    def keep(self, plan: JobPlan, until: float) -> None:
        """Outputs not collected: the tasks stop, the nodes (and the stack) stay for ``squall job attach``."""
        try:
            self._job(plan).executor.stop(plan, remove=False)
        except SquallError as exc:  # nodes already gone: nothing left to keep
            self.store.record(plan.job_id, "keep", "nodes-unreachable", error=exc.message)

    # garbage collection ---------------------------------------------------------

    def live_resources(self) -> list[LiveResource]:
        """The job stacks (their nodes, folders and tasks go with them)."""
        return self.provisioner.live_resources()

    def remove(self, resource: LiveResource) -> None:
        if self.provisioner.remove(resource):
            if resource.job_id:
                self._known_hosts(resource.job_id).unlink(missing_ok=True)
            return
        if resource.kind != "jobdir":  # a job folder on a node went with the node's stack
            raise SquallError(f"site {self.name!r} has no {resource.kind} resources to remove")

    def close(self) -> None:
        for job in self._jobs.values():
            job.close()
        self._jobs.clear()



def _stop_quickly(plan: JobPlan):
    def stop(host: RemoteHost, _item: None) -> None:
        try:
            host.agent("stop", host.job_dir(plan.job_id), "remove", retry=False)
        except SquallError:
            pass  # the node goes with the stack
    return stop

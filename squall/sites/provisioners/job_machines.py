"""Machines made for one job, handed to the site as that job's hosts: the provisioner of the ``cloud`` kind.

What makes the machines is a job stack (``JobStackProvisioner``) or a claim on
the organisation's idle bank (``BankProvisioner``); this part turns them into
the job's hosts (``ThroughHead``: SSH through the head node), waits until every
one answers and has finished cloud-init (``squall_boot_timeout``) and pushes
the runtime to them, sha256-checked. The machines go in every case (``down``),
except when outputs could not be collected: then they are kept (``keep``, with
the job's leases) for ``squall job attach``, and ``squall gc`` destroys them once
the leases expire. Before anything is made, the job is planned and priced from
the organisation (the machine its tasks get, the boot time this site has seen).
"""

from __future__ import annotations

import statistics

from squall.inventory import SiteVars
from squall.job_types import JobPlan
from squall.money.quotes import Quote
from squall.money.site_limits import SiteLimit
from squall.sites.contract import Claim, LiveResource
from squall.sites.provisioners.bank import BankProvisioner
from squall.sites.provisioners.boot_wait import wait_for_boot
from squall.sites.provisioners.contract import Provisioner
from squall.sites.provisioners.job_stack import JobStackProvisioner
from squall.sites.transports.contract import Transport, each_host
from squall.sites.transports.through_head import ThroughHead
from squall.sites.workarea import KILL_GRACE
from squall.store import Store

DEFAULT_BOOT_S = 90.0  # a Debian image to SSH and cloud-init done, typical on AWS and OpenStack (stated, not measured)


class JobMachines(Provisioner):
    makes_hosts = True

    def __init__(self, site: str, store: Store, site_vars: SiteVars, maker: JobStackProvisioner | BankProvisioner,
                 reach: ThroughHead):
        self.site, self.store, self.site_vars, self.maker, self.reach = site, store, site_vars, maker, reach
        self._hosts: dict[str, list[Transport]] = {}

    # planning -----------------------------------------------------------------

    def check(self, plan: JobPlan) -> None:
        self.maker.check(plan)

    def site_limits(self, plan: JobPlan | None) -> tuple[list[SiteLimit], str]:
        return self.maker.site_limits(plan)

    def max_duration(self, plan: JobPlan) -> float:
        """Boot, then waves of tasks over the machines (at least one task at once)."""
        at_once = max(1, self.maker.node_count(plan) // plan.spec.resources.nodes)
        return self.site_vars.squall_boot_timeout + -(-len(plan.tasks) // at_once) * (plan.walltime + KILL_GRACE)

    def quote(self, plan: JobPlan) -> Quote:
        from squall.money.site_prices import energy_model, price_model

        wait, source = self.boot_time()
        price = self.maker.price(plan) or price_model(self.site_vars, None)  # the organisation's, else the site's
        limits, limits_source = self.maker.site_limits(plan)
        return Quote(price=price, energy=energy_model(self.site_vars), queue_wait_s=wait, queue_source=source,
                     site_limits=tuple(limits), site_limits_source=limits_source)

    def boot_time(self) -> tuple[float, str]:
        """Seconds from creating the machines to all of them answering: the median of this site's last 20
        boot waits (with the stack's creation), else the documented default."""
        rows = self.store.rows(
            "SELECT journal.job_id, journal.phase, journal.event, journal.ts FROM journal JOIN jobs "
            "ON jobs.id = journal.job_id WHERE jobs.site = ? AND ((journal.phase = 'up' AND journal.event = "
            "'begin') OR (journal.phase = 'boot' AND journal.event = 'end')) ORDER BY journal.seq DESC LIMIT 200",
            (self.site,))
        starts = {job: ts for job, phase, _event, ts in rows if phase == "up"}
        waits = [ts - starts[job] for job, phase, _event, ts in rows if phase == "boot" and job in starts][:20]
        if not waits:
            return DEFAULT_BOOT_S, f"cloud boot: documented default {DEFAULT_BOOT_S:.0f} s (no history yet)"
        return statistics.median(waits), f"cloud boot: median of this site's last {len(waits)}"

    # the job's machines ---------------------------------------------------------

    def up(self, plan: JobPlan, claim: Claim) -> list[Transport]:
        """The machines, then every one up and booted (or the error naming those that are not), then the
        runtime on each that lacks this very one."""
        self.maker.up(plan, claim)
        hosts = self.hosts(plan)
        self.store.record(plan.job_id, "boot", "begin", nodes=[str(h) for h in hosts])
        seconds = wait_for_boot(hosts, self.site_vars.squall_boot_timeout, f"job {plan.job_id}'s nodes")
        self.store.record(plan.job_id, "boot", "end", seconds=round(seconds, 2))
        sent = each_host(lambda host, _: host.install_runtime(), {host: None for host in hosts})
        self.store.record(plan.job_id, "up", "runtime", sent=sorted(h.name for h, done in sent.items() if done))
        return hosts

    def hosts(self, plan: JobPlan) -> list[Transport]:
        """The job's machines as hosts, from what made them (kept in the store: a resumed controller,
        ``attach`` and ``logs`` find them again)."""
        if plan.job_id not in self._hosts:
            self._hosts[plan.job_id] = self.reach.hosts(plan.job_id, self.maker.nodes(plan))
        return self._hosts[plan.job_id]

    def has_hosts(self, plan: JobPlan) -> bool:
        return plan.job_id in self._hosts or self.maker.has_nodes(plan)

    def down(self, plan: JobPlan) -> None:
        try:
            self.maker.down(plan)
        finally:
            for host in self._hosts.pop(plan.job_id, []):
                host.close()
            self.reach.forget(plan.job_id)

    def keep(self, plan: JobPlan) -> None:
        """The machines stay (with the job's leases) for ``squall job attach``."""

    # garbage collection ---------------------------------------------------------

    def live_resources(self) -> list[LiveResource]:
        """The job stacks (their machines, folders and tasks go with them)."""
        return self.maker.live_resources()

    def remove(self, resource: LiveResource) -> bool:
        if self.maker.remove(resource):
            if resource.job_id:
                self.reach.forget(resource.job_id)
            return True
        return resource.kind == "jobdir"  # a job folder on a machine went with the machine

    def close(self) -> None:
        for hosts in self._hosts.values():
            for host in hosts:
                host.close()
        self._hosts.clear()

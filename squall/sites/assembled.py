"""A site built from parts: its hosts (the transport: this machine, or machines reached over SSH), an
executor that starts the tasks there and a provisioner that makes what the job needs around it.

A provisioner may make the job's machines themselves (``makes_hosts``: the
``cloud`` kind's job stack or bank VM): each job then has its own hosts, the
ones ``up`` made, and its own executor over them (``executor_for``); the job
is planned and priced by the provisioner, since nothing can be asked before
the machines exist.

Each job has a folder ``<work_root>/squall-<job-id>/`` on every host that
holds some of its tasks, laid out as ``squall.sites.workarea`` says, so the one
runtime runs there. ``up`` creates what the provisioner makes, then the
folders with their owner marker; ``down`` stops what runs, removes the
folders on every host it can reach, and destroys what the provisioner made
in every case.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Callable

from squall.errors import MissingDependency, Refused, SquallError
from squall.inventory import Partition, SiteVars
from squall.money.prices import PriceModel
from squall.money.quotes import Quote
from squall.money.site_limits import SiteLimit, concurrency, task_demand
from squall.money.site_prices import energy_model, price_model
from squall.money.energy import EnergyModel
from squall.job_types import CollectedTask, JobPlan, TaskState
from squall.sites.contract import Capability, Claim, LiveResource, Reporter, Site, owner_tags
from squall.sites.transports.images import archive_engine, image_archive, loaded_image
from squall.sites.executors.contract import Executor
from squall.sites.provisioners.contract import Provisioner
from squall.sites.transports.contract import each_host
from squall.sites.transports.contract import ByteProgress, Transport, Upload
from squall.store import Store
from squall.results import writing_results
from squall.transfer import SourceDigests
from squall.sites.workarea import META_FILES, collect_outputs, input_list, task_document, task_folder

LEASE_ALLOWANCE = 600  # seconds past the expected end, for owner tags of a job without a lease yet


@dataclass(frozen=True)
class SiteTerms:
    """What a site states besides its parts: from its inventory (``of``), or set by its kind (``local``)."""

    container_runtimes: tuple[str, ...] = ()
    runtimes_found: bool = False  # True: the runtimes were looked for on the machine, not stated
    containers_conf: str = ""
    max_concurrent_jobs: int | None = None
    pricing: Callable[[Partition | None], PriceModel | None] = lambda partition: None
    energy: EnergyModel = EnergyModel()
    capabilities: frozenset[Capability] | None = None  # None: the executor's

    @classmethod
    def of(cls, site_vars: SiteVars) -> "SiteTerms":
        return cls(tuple(site_vars.squall_container_runtimes), False, site_vars.squall_containers_conf,
                   site_vars.squall_max_concurrent_jobs, lambda partition: price_model(site_vars, partition),
                   energy_model(site_vars))


class AssembledSite(Site):
    def __init__(self, name: str, kind: str, store: Store, hosts: list[Transport], executor: Executor,
                 provisioner: Provisioner, terms: SiteTerms,
                 executor_for: Callable[[list[Transport]], Executor] | None = None):
        """``executor_for(hosts)``: the executor of one job's hosts, when the provisioner makes them (then
        ``executor`` only plans)."""
        super().__init__(name)
        self.kind = kind
        self.store = store
        self.hosts = hosts
        self.executor = executor
        self.provisioner = provisioner
        self.terms = terms
        self.max_concurrent_jobs = terms.max_concurrent_jobs
        self.container_runtimes = list(terms.container_runtimes)
        self.capabilities = executor.capabilities if terms.capabilities is None else terms.capabilities
        self.executor_for = executor_for
        self._job_executors: dict[str, Executor] = {}
        # a poll costs remote calls: share one
        self.shared_poll = provisioner.makes_hosts or any(host.remote for host in hosts)
        self.poll_interval = max((host.poll_interval for host in hosts), default=1.0)

    def _executor(self, plan: JobPlan) -> Executor:
        """The executor of the job's hosts: the site's own, or one over the machines made for the job."""
        if not self.provisioner.makes_hosts:
            return self.executor
        if plan.job_id not in self._job_executors:
            assert self.executor_for is not None, "a provisioner that makes hosts needs executor_for"
            self._job_executors[plan.job_id] = self.executor_for(self.provisioner.hosts(plan))
        return self._job_executors[plan.job_id]

    def _job_hosts(self, plan: JobPlan) -> list[Transport]:
        return self.provisioner.hosts(plan) if self.provisioner.makes_hosts else self.hosts

    def _folder(self, host: Transport, path: str, hosts: list[Transport] | None = None) -> str:
        """A job folder as leases and gc name it: the bare path where the site (or the job) has one host."""
        return path if len(self.hosts if hosts is None else hosts) == 1 else f"{host.name}:{path}"

    # planning -----------------------------------------------------------------

    def check(self, plan: JobPlan) -> None:
        self.check_processes(plan)
        spec = plan.spec
        if spec.image:
            allowed = self.container_runtimes
            missing = not allowed or (spec.runtime != "auto" and spec.runtime not in allowed)
            if missing and self.terms.runtimes_found:  # looked for on the machine, not stated by an inventory
                raise MissingDependency(f"runtime: no container runtime found on {self.hosts[0]} (looked for "
                                        f"{spec.runtime if spec.runtime != 'auto' else 'any'}; found "
                                        f"{', '.join(allowed) or 'none'})",
                                        hint="install apptainer or podman, or drop 'image' to run the command "
                                             "directly")
            if missing:
                raise Refused(f"runtime: site {self.name!r} allows {allowed or 'no container runtime'}, "
                              f"not {spec.runtime}")
            if spec.image_archive:
                archive_engine(self.name, spec.runtime, allowed)
        self.provisioner.check(plan)
        if self.provisioner.makes_hosts:
            return  # its machines are made for the job: there is nothing to ask before they exist
        self.executor.prefetch(plan)
        facts = {host.name: fact for host, fact in each_host(lambda h, _: h.facts(),
                                                             {h: None for h in self.hosts}).items()}
        for host in self.hosts:
            host.check_runtime(self.name, facts[host.name])
        self.executor.check(plan, facts)

    def max_duration(self, plan: JobPlan) -> float:
        made = self.provisioner.max_duration(plan)
        return self.executor.max_duration(plan) if made is None else made

    def quote(self, plan: JobPlan) -> Quote:
        made = self.provisioner.quote(plan)
        if made is not None:
            return made
        partition = self.executor.partition(plan)
        wait, source = self.executor.queue_wait(plan)
        limits, limits_source = self.executor.site_limits(plan)
        at_once = [n for n in (concurrency(limits, task_demand(plan.spec.resources)),
                               self.executor.concurrency(plan)) if n is not None]
        return Quote(price=self.terms.pricing(partition), energy=self.terms.energy,
                     partition=partition.name if partition else None, queue_wait_s=wait, queue_source=source,
                     concurrency=min(at_once) if at_once else None,
                     site_limits=tuple(limits), site_limits_source=limits_source)

    def own_limits(self) -> tuple[list[SiteLimit], str]:
        if self.provisioner.makes_hosts:
            return self.provisioner.site_limits(None)
        return self.executor.site_limits(None)

    def rendered_script(self, plan: JobPlan) -> str | None:
        return self.executor.rendered_script(plan)

    # lifecycle ------------------------------------------------------------------

    def up(self, plan: JobPlan, claim: Claim) -> None:
        self.provisioner.up(plan, claim)
        executor, hosts = self._executor(plan), self._job_hosts(plan)
        used = executor.holders(plan)
        for host in used:
            claim("jobdir", self._folder(host, host.job_dir(plan.job_id), hosts))
        for kind, resource in executor.claims(plan):
            claim(kind, resource)
        owner = self._owner(plan, self._expiry(plan))
        each_host(lambda host, _: host.write_owner(host.job_dir(plan.job_id), owner, create=True), used)

    def _expiry(self, plan: JobPlan) -> float:
        """What owner tags at the site say: the job's lease expiry (what this store's gc goes by)."""
        leases = self.store.leases(job_id=plan.job_id)
        if leases:
            return max(lease.expires_at for lease in leases)
        return time.time() + self.max_duration(plan) + LEASE_ALLOWANCE

    @staticmethod
    def _owner(plan: JobPlan, expires: float) -> dict:
        return {**plan.tags, "squall:expires": str(int(expires))}

    def stage(self, plan: JobPlan, reporter: Reporter) -> None:
        """Each host gets its own tasks' folders and inputs, every host at once."""
        executor = self._executor(plan)
        used = executor.holders(plan)
        containers = self._containers(plan, list(used), reporter)
        tasks = {task.index: task for task in plan.tasks}
        digests = SourceDigests(self.store, [item.path for task in plan.tasks for item in task.inputs])
        expires = self._expiry(plan)
        work = {}
        for host, indexes in used.items():
            files = executor.job_files(plan, host, expires)
            uploads = []
            for index in indexes:
                files.update(self._task_files(plan, host, index, containers[host]))
                uploads += [Upload(f"{task_folder(index)}/in/{item.rel}", item.path, item.size)
                            for item in tasks[index].inputs]
            work[host] = (files, uploads)
        progress = ByteProgress(reporter, sum(u.size for _, uploads in work.values() for u in uploads))
        try:
            each_host(lambda host, item: host.stage(host.job_dir(plan.job_id), *item, digests, progress), work)
        finally:  # what was hashed is remembered, even for a staging that was cut
            digests.save()
        progress.finish()
        executor.prepare(plan)

    def _containers(self, plan: JobPlan, hosts: list[Transport], reporter: Reporter) -> dict[Transport, dict | None]:
        """Each host's task container. An image archive goes to the host's image folder unless an exact copy
        is there already, and is loaded there once per digest; tasks then run it by its image id."""
        spec = plan.spec
        if not spec.image:
            return {host: None for host in hosts}
        conf = {"conf": self.terms.containers_conf} if self.terms.containers_conf else {}
        archive = image_archive(plan, self.store)
        if archive is None:
            runtime = self.container_runtimes[0] if spec.runtime == "auto" else spec.runtime
            return {host: {"runtime": runtime, "image": spec.image, **conf} for host in hosts}
        engine = archive_engine(self.name, spec.runtime, self.container_runtimes)
        progress = ByteProgress(reporter, archive.size * len(hosts))

        def load(host: Transport, _item: None) -> dict:
            images = f"{host.work_root}/images"
            host.stage(images, {}, [Upload(archive.file_name, archive.path, archive.size, archive.digest)],
                       SourceDigests(self.store, []), progress)
            answer = host.agent("image", engine, images, f"{images}/{archive.file_name}", archive.digest,
                                *conf.values())
            return {"runtime": engine, "image": loaded_image(answer, str(host)), **conf}

        containers = each_host(load, {host: None for host in hosts})
        progress.finish()
        return containers

    def _task_files(self, plan: JobPlan, host: Transport, index: int,
                    container: dict | None) -> dict[str, tuple[bytes, int]]:
        """``task-<i>/`` files other than inputs: task.json, inputs.txt, the script."""
        name = task_folder(index)
        files: dict[str, tuple[bytes, int]] = {}
        if plan.script is not None:
            files[f"{name}/script/{plan.script.name}"] = (plan.script.read_bytes(), 0o700)
        executor = self._executor(plan)
        task = task_document(plan, index, f"{host.job_dir(plan.job_id)}/{name}", container=container,
                             heartbeat=executor.heartbeat)
        task.update(executor.task_fields(plan, host, index))
        inputs = [item.rel for item in next(t for t in plan.tasks if t.index == index).inputs]
        files[f"{name}/inputs.txt"] = (input_list(inputs), 0o600)
        files[f"{name}/task.json"] = (json.dumps(task, indent=1).encode(), 0o600)
        return files

    def launch(self, plan: JobPlan) -> dict:
        return self._executor(plan).launch(plan)

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        """One call for the site's jobs; jobs on machines of their own ask each job's machines at once."""
        if not self.provisioner.makes_hosts:
            return self.executor.poll(plans)
        by_id = {plan.job_id: plan for plan in plans}
        answers = each_host(lambda job_id, _: self._executor(by_id[job_id]).poll([by_id[job_id]]), dict.fromkeys(by_id))
        return {job_id: states for answer in answers.values() for job_id, states in answer.items()}

    def wait(self, plans: list[JobPlan], timeout: float) -> bool:
        """A site of one host waits as its transport can (a runtime's exit on this machine, a status file
        replaced on a remote host); a site of several hosts waits for its next poll interval."""
        if len(self.hosts) == 1:
            return self.hosts[0].wait([self.hosts[0].job_dir(plan.job_id) for plan in plans], timeout)
        return super().wait(plans, timeout)

    def cancel(self, plan: JobPlan) -> None:
        self._executor(plan).cancel(plan)

    def collect(self, plan: JobPlan, indexes: list[int], reporter: Reporter) -> list[CollectedTask]:
        """Per host: each task's status, manifest and logs in one remote call; then its outputs, verified."""
        collected = []
        executor = self._executor(plan)
        for host, host_indexes in executor.by_host(plan, indexes).items():
            if host.name in executor.lost:  # nothing to fetch: the task already failed naming the host
                collected += [CollectedTask(i, 0, 0, error=f"host {host} was lost: its outputs are lost")
                              for i in host_indexes]
                continue
            job_dir = host.job_dir(plan.job_id)
            found = host.read_files(job_dir, [f"{task_folder(i)}/{n}" for i in host_indexes for n in META_FILES])
            for index in host_indexes:
                meta = plan.results_dir / "meta" / task_folder(index)
                with writing_results(meta):
                    meta.mkdir(parents=True, exist_ok=True)
                    for name in META_FILES:
                        data = found.get(f"{task_folder(index)}/{name}")
                        if data is not None:
                            (meta / name).write_bytes(data)
                out = f"{job_dir}/{task_folder(index)}/out"

                def download(rel, destination, entry, out=out, host=host):
                    host.download(f"{out}/{rel}", destination, entry)

                collected.append(collect_outputs(index, found.get(f"{task_folder(index)}/manifest.json"),
                                                 plan.results_dir / task_folder(index), download))
        return sorted(collected, key=lambda c: c.index)

    def down(self, plan: JobPlan) -> None:
        """Stop what runs and remove the job folders (kept with ``--keep-remote``); the provisioner's always.
        Machines made for the job go with it: one attempt each to stop what runs, so nothing runs on if
        their destruction fails, and none that does not answer is waited for."""
        try:
            if self.provisioner.makes_hosts:
                self._stop_quickly(plan)
            else:
                self.executor.stop(plan, remove=not plan.keep_remote)
        finally:
            self._job_executors.pop(plan.job_id, None)
            self.provisioner.down(plan)

    def _stop_quickly(self, plan: JobPlan) -> None:
        def stop(host: Transport, _item: None) -> None:
            try:
                host.agent("stop", host.job_dir(plan.job_id), "remove", retry=False)
            except SquallError:
                pass  # the machine goes anyway

        try:
            if plan.job_id in self._job_executors or self.provisioner.has_hosts(plan):
                each_host(stop, {host: None for host in self.provisioner.hosts(plan)})
        except SquallError as exc:  # what made the machines names no usable ones: still destroy
            self.store.record(plan.job_id, "down", "nodes-not-stopped", error=exc.message)

    def keep(self, plan: JobPlan, until: float) -> None:
        """Stop what still runs; the folders stay, their owner marker says until when; the provisioner keeps
        what holds them (machines made for the job stay for ``attach``)."""
        try:
            executor = self._executor(plan)
            executor.stop(plan, remove=False)
            owner = self._owner(plan, until)
            each_host(lambda host, _: host.write_owner(host.job_dir(plan.job_id), owner), executor.holders(plan))
        except SquallError as exc:
            if not self.provisioner.makes_hosts:
                raise
            self.store.record(plan.job_id, "keep", "nodes-unreachable", error=exc.message)  # nothing left to keep
        finally:
            self.provisioner.keep(plan)

    # garbage collection and logs ----------------------------------------------

    def live_resources(self) -> list[LiveResource]:
        """Every host's job folders and scheduler jobs, with their owner tags; the provisioner's resources."""
        scheduler = [self.executor.scheduler] if self.executor.scheduler else []
        listings = each_host(lambda host, _: host.agent("inventory", host.work_root, *scheduler),
                             {h: None for h in self.hosts})
        live = []
        for host, listing in listings.items():
            owners = {}
            for f in listing["folders"]:
                owner = f.get("owner") or {}
                store_id = owner.get("squall:store") or (self.store.store_id if host.owns_work_root else None)
                owners[f["path"]] = tags = owner_tags(store_id, owner.get("squall:expires"))
                live.append(LiveResource(self.name, "jobdir", self._folder(host, f["path"]),
                                         f["name"].removeprefix("squall-"), {"mtime": f["mtime"], "host": host.name},
                                         *tags))
            live += self.executor.scheduler_jobs(host, listing)
            live += [self._process(host, p, owners.get(p["folder"], (None, None)))
                     for p in listing.get("processes", [])]
        return live + self.provisioner.live_resources()

    def _process(self, host: Transport, process: dict, tags: tuple[str | None, float | None]) -> LiveResource:
        """A process still working in a job folder (or one removed since): its owner is the folder's."""
        job_id = process["folder"].rsplit("/", 1)[-1].removeprefix("squall-")
        return LiveResource(self.name, "process", f"{host.name}:{process['pid']}", job_id,
                            {"host": host.name, "pid": process["pid"], "folder": process["folder"],
                             "args": process["args"], "gone": process["gone"]}, *tags)

    def remove(self, resource: LiveResource) -> None:
        if self.provisioner.remove(resource):
            return
        if not self.hosts:
            raise SquallError(f"site {self.name!r} has no {resource.kind} resources to remove")
        host = next((h for h in self.hosts if h.name == resource.detail.get("host")), self.hosts[0])
        if resource.kind == "jobdir":
            host.remove_dir(resource.resource.removeprefix(f"{host.name}:"))
        elif resource.kind == "process":
            host.agent("end", resource.detail["folder"], str(resource.detail["pid"]))
        else:
            self.executor.remove_scheduler_job(resource)

    def read_log(self, plan: JobPlan, index: int, stream: str, offset: int) -> bytes | None:
        host = self._executor(plan).placement(plan)[index]
        job_dir = host.job_dir(plan.job_id)
        return host.read_log(job_dir, f"{job_dir}/{task_folder(index)}/{stream}.log", offset)

    def close(self) -> None:
        for host in self.hosts:
            host.close()
        self._job_executors.clear()
        self.provisioner.close()


def open_inventory_site(name: str, home: Path, store: Store, inventory, executor_for) -> AssembledSite:
    """A site of SSH hosts from its inventory (``hpc``, ``ssh``): ``executor_for(name, hosts, inventory)``
    starts its tasks; nothing is provisioned."""
    from squall.sites.transports.ssh import inventory_hosts

    hosts = inventory_hosts(name, home, store, inventory)
    return AssembledSite(name, inventory.vars.squall_kind, store, hosts, executor_for(name, hosts, inventory),
                         Provisioner(), SiteTerms.of(inventory.vars))

"""The scheduler-free executor: the runtime starts each host's tasks itself, in slots (SSH + python3 only).

Tasks are spread over the hosts balanced by their input bytes; each host
gets only its own tasks' folders and inputs. A task spanning several hosts
(``resources.nodes``) gets that many distinct hosts; its runtime runs on the
first and starts the ranks with ``mpirun`` over the others (``mpi_hosts``).
``start`` launches a host's tasks detached (they outlive the SSH session);
at most ``host CPUs // task cpus`` run at once, through slot locks under the
account's home shared by every job on that host. A poll is one agent call per host, in parallel. A
task whose runtime died ends ``failed`` with a reason naming the host.

A host that does not answer (a passing outage, a jump host restarting, a
node whose network is down) proves nothing about its tasks: they are shown
``lost`` at once, naming the host and since when, and the host is asked again
with growing pauses. Only when it has been silent longer than its tasks could
still run (their walltime, the kill grace and the lease margin) are its tasks
given up as failed, its folder left for gc; when no host of the job answers
that long, the poll raises ``SiteUnreachable`` and the job waits for ``attach``.
"""

from __future__ import annotations

import json
import time

from squall.errors import Interrupted, Refused, SiteUnreachable, SquallError
from squall.sites.executors import mpi_hosts
from squall.job_types import JobPlan, TaskState
from squall.sites.contract import Capability
from squall.sites.executors.contract import Executor
from squall.sites.transports.sandbox import LocalSandbox, warn_unsandboxed
from squall.sites.executors.silence import Silence
from squall.sites.transports.contract import HostFacts, Transport, each_host
from squall.sites.executors.runtime_status import status_state, vanished
from squall.job_types import TaskStatus
from squall.sites.workarea import KILL_GRACE, lease_margin, task_folder

ANSWER_TIMEOUT = 20.0  # seconds a poll waits for a host's answer before counting it silent
ASK_AGAIN = (2.0, 4.0, 8.0, 16.0, 30.0)  # pauses before asking a silent host again (the last repeats)


class SlotsExecutor(Executor):
    heartbeat = 2.0
    capabilities = frozenset({Capability.MULTI_NODE})

    def __init__(self, site: str, hosts: list[Transport], sandbox: LocalSandbox | None = None):
        """``sandbox``: how payloads are shut in on this machine (the local site; remote hosts: None)."""
        super().__init__(site, hosts)
        self.sandbox = sandbox
        self.silent: dict[str, Silence] = {}  # host name -> its silence: not answering, not given up on
        self._keys: dict[str, mpi_hosts.JobKey] = {}  # a job's own key pair for mpirun (never stored)
        self.facts: dict[str, HostFacts] = {}  # what each host said at ``check``

    def check(self, plan: JobPlan, facts: dict[str, HostFacts]) -> None:
        """Every host must fit one task (tasks go to any host, balanced by input size).

        A host has what the inventory gives it (``squall_cpus``...), else what it reports; GPUs only
        when the inventory declares them.
        """
        res = plan.spec.resources
        if res.nodes > len(self.hosts):
            raise Refused(f"resources.nodes: site {self.site!r} has {len(self.hosts)} host(s); a task asks "
                          f"{res.nodes}", hint="ask fewer nodes per task, or add hosts to the site")
        wanted = {"cpus": res.cpus_per_node, "memory_mb": (res.memory_bytes or 0) // (1 << 20), "gpus": res.gpus}
        self.facts = facts
        for host in self.hosts:
            has = self._has(host)
            short = [key for key in ("cpus", "memory_mb", "gpus") if wanted[key] > has[key]]
            if short:
                key, unit = short[0], short[0].replace("_mb", " MB")
                raise Refused(f"resources.{key.removesuffix('_mb')}: host {host} of site {self.site!r} has "
                              f"{has[key]} {unit}, a task asks {wanted[key]}",
                              hint="ask less per task, or choose a site whose machines have it"
                                   + (" (squall_cpus, squall_memory_mb, squall_gpus state a machine's own)"
                                      if host.remote else ""))

    def _has(self, host: Transport) -> dict[str, int]:
        fact = self.facts[host.name]
        return {"cpus": host.declared.get("cpus") or fact.cpus,
                "memory_mb": host.declared.get("memory_mb") or fact.memory_mb,
                "gpus": host.declared.get("gpus") or 0}

    def concurrency(self, plan: JobPlan) -> int | None:
        """Tasks at once: each host's CPUs // task cpus, summed (after ``check``)."""
        if not self.facts:
            return None
        cpus = plan.spec.resources.cpus_per_node
        return sum(max(1, self._has(host)["cpus"] // cpus) for host in self.hosts) // plan.spec.resources.nodes

    def max_duration(self, plan: JobPlan) -> float:
        """Tasks wait for slots, so waves of them may run one after another on a host (one task per wave
        while the hosts' CPUs are not known)."""
        cpus = plan.spec.resources.cpus_per_node
        waves = max(-(-len(indexes) // (max(1, self._has(host)["cpus"] // cpus) if self.facts else 1))
                    for host, indexes in self.by_host(plan).items())
        return waves * (plan.walltime + KILL_GRACE)

    def task_hosts(self, plan: JobPlan) -> dict[int, list[Transport]]:
        """Each task's hosts, the first running it: largest inputs first, each task to the hosts with the
        fewest bytes so far (ties: fewer tasks, then order); a task of N nodes gets N distinct hosts."""
        load = [[0, 0, position] for position in range(len(self.hosts))]
        chosen: dict[int, list[Transport]] = {}
        for task in sorted(plan.tasks, key=lambda t: (-sum(i.size for i in t.inputs), t.index)):
            picked = sorted(load)[:plan.spec.resources.nodes]
            for entry in picked:
                entry[0] += sum(i.size for i in task.inputs)
                entry[1] += 1
            chosen[task.index] = [self.hosts[entry[2]] for entry in picked]
        return dict(sorted(chosen.items()))

    def placement(self, plan: JobPlan) -> dict[int, Transport]:
        return {index: hosts[0] for index, hosts in self.task_hosts(plan).items()}

    def holders(self, plan: JobPlan) -> dict[Transport, list[int]]:
        held: dict[Transport, list[int]] = {}
        for index, hosts in self.task_hosts(plan).items():
            for host in hosts:
                held.setdefault(host, []).append(index)
        return held

    def _spanning(self, plan: JobPlan, runner: Transport) -> dict[int, list[Transport]]:
        """The tasks of several processes that ``runner`` starts, with their hosts."""
        if not plan.spec.resources.multi_rank:
            return {}
        return {index: hosts for index, hosts in self.task_hosts(plan).items() if hosts[0] is runner}

    def _key(self, plan: JobPlan) -> mpi_hosts.JobKey:
        if plan.job_id not in self._keys:
            self._keys[plan.job_id] = mpi_hosts.new_job_key()
        return self._keys[plan.job_id]

    def job_files(self, plan: JobPlan, host: Transport, expires: float) -> dict[str, tuple[bytes, int]]:
        """For the tasks of several processes ``host`` runs: the job's private key, the pinned keys of their
        hosts, and each task's hostfile."""
        spanning = self._spanning(plan, host)
        if not spanning:
            return {}
        peers = list({h.name: h for hosts in spanning.values() for h in hosts}.values())
        files = {f"{mpi_hosts.MPI_DIR}/id_ed25519": (self._key(plan).private_openssh, 0o600),
                 f"{mpi_hosts.MPI_DIR}/known_hosts": (mpi_hosts.known_hosts(peers), 0o600)}
        for index, hosts in spanning.items():
            files[f"{task_folder(index)}/hostfile"] = (mpi_hosts.hostfile(hosts, plan.spec.resources.tasks_per_node),
                                                       0o600)
        return files

    def prepare(self, plan: JobPlan) -> None:
        """Each multi-node task's other hosts let its first host in with the job's key."""
        sources: dict[Transport, set[str]] = {}
        for hosts in self.task_hosts(plan).values():
            if plan.spec.resources.multi_rank:
                for peer in hosts[1:]:
                    sources.setdefault(peer, set()).add(hosts[0].ssh.host)
        public = self._key(plan).public if sources else ""
        each_host(lambda peer, addresses: peer.agent(
            "peers", plan.job_id, "add", stdin=json.dumps({"key": public, "from": sorted(addresses)}).encode()),
            sources)

    def task_fields(self, plan: JobPlan, host: Transport, index: int) -> dict:
        """Slot locks shared by every job on the host: its CPUs (declared, else counted there) // task cpus;
        a task of several processes is started by mpirun over its hosts."""
        res = plan.spec.resources
        cpus = res.cpus_per_node
        declared = host.declared.get("cpus")
        slots = {"dir": host.slots_dir, "count": max(1, declared // cpus)} if declared \
            else {"dir": host.slots_dir, "cpus": cpus}
        fields: dict = {"slots": slots}
        if self.sandbox is not None and self.sandbox.fields is not None:
            fields["sandbox"] = self.sandbox.fields
        if res.multi_rank:
            job_dir = host.job_dir(plan.job_id)
            fields["launcher"] = mpi_hosts.launcher(job_dir, f"{job_dir}/{task_folder(index)}",
                                                    res.nodes * res.tasks_per_node)
        return fields

    def launch(self, plan: JobPlan) -> dict:
        if self.sandbox is not None:
            warn_unsandboxed(self.sandbox)
        started = each_host(lambda host, indexes: host.agent("start", host.job_dir(plan.job_id),
                                                             *map(str, indexes)), self.by_host(plan))
        return {host.name: answer["started"] for host, answer in started.items()}

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        """One agent call per host that holds tasks of ``plans``, all at once; a host given up on is not asked
        again, a silent one only after its pause."""
        placements = {plan.job_id: self.placement(plan) for plan in plans}
        wanted = {host: [p for p in plans if host in placements[p.job_id].values()] for host in self.hosts}
        wanted = {host: jobs for host, jobs in wanted.items() if jobs and host.name not in self.lost}

        def ask(host: Transport, jobs: list[JobPlan]) -> dict | None:
            silence = self.silent.get(host.name)
            if silence is not None and time.monotonic() < silence.next_ask:
                return None
            try:
                answer = host.agent("poll", "none", *[host.job_dir(p.job_id) for p in jobs], retry=False,
                                    timeout=ANSWER_TIMEOUT)
            except Interrupted:  # a signal to this controller says nothing about the host: never a lost task
                raise
            except SquallError as exc:  # an unreachable host ends nothing: its tasks' ends are unknown
                self._silent(host, exc.message, max(self.max_duration(p) for p in jobs) + lease_margin())
                return None
            self.silent.pop(host.name, None)
            return answer

        answers = each_host(ask, wanted)
        self._give_up_on_the_gone(list(wanted))
        return {plan.job_id: [self._task_state(plan, t.index, placements[plan.job_id][t.index],
                                               answers.get(placements[plan.job_id][t.index]))
                              for t in plan.tasks]
                for plan in plans}

    def _silent(self, host: Transport, why: str, limit: float) -> None:
        """Note that ``host`` did not answer (its tasks could run ``limit`` seconds more); ask again later."""
        now = time.monotonic()
        silence = self.silent.get(host.name)
        if silence is None:
            silence = self.silent[host.name] = Silence(now, time.time(), why, limit)
        else:
            silence.asked, silence.why = silence.asked + 1, why
        silence.next_ask = now + ASK_AGAIN[min(silence.asked, len(ASK_AGAIN)) - 1]

    def _give_up_on_the_gone(self, asked: list[Transport]) -> None:
        """Hosts silent for longer than their tasks could run: while another host answers, they are gone (their
        tasks fail); when none answers, the site is unreachable and the job is left for ``attach``."""
        silent = [host for host in asked if host.name in self.silent]
        gone = [host for host in silent if self.silent[host.name].over()]
        if not gone:
            return
        if len(silent) < len(asked):  # the site answers: only these hosts are gone
            for host in gone:
                silence = self.silent[host.name]
                self.lost[host.name] = (f"silent since {silence.shown()}, longer than its tasks could run: "
                                        f"{silence.why}")
        elif len(gone) == len(asked):
            first = self.silent[gone[0].name]
            raise SiteUnreachable(f"site {self.site}: no host has answered since {first.shown()}, longer than the "
                                  f"tasks could run ({first.why})",
                                  hint="everything is left at the site: 'squall job attach ID' once it answers")

    def _task_state(self, plan: JobPlan, index: int, host: Transport, answer: dict | None) -> TaskState:
        if answer is None and host.name in self.lost:
            return TaskState(index, TaskStatus.FAILED,
                             error=f"host {host} stopped answering; the task is lost: {self.lost[host.name]}; its "
                                   "folder is left for squall gc")
        if answer is None:
            silence = self.silent[host.name]
            return TaskState(index, TaskStatus.LOST,
                             error=f"host {host} has not answered since {silence.shown()}: {silence.why}; Squall "
                                   "asks again and concludes nothing about the task until it answers")
        job = answer["jobs"].get(host.job_dir(plan.job_id))
        if job is None:
            message = vanished(host, plan, self.site)
            return TaskState(index, TaskStatus.FAILED, error=message, job_error=message)
        status = job["tasks"].get(str(index))
        if str(index) in job.get("dead", []):
            return TaskState(index, TaskStatus.FAILED, (status or {}).get("exit_code"),
                             error=f"the runtime on host {host} died before the task ended "
                                   "(killed, or the machine restarted)")
        if status is not None:
            return status_state(index, status)
        return TaskState(index, TaskStatus.QUEUED if job["launched_at"] else TaskStatus.PENDING)

    def cancel(self, plan: JobPlan) -> None:
        """The runtimes are stopped; each writes its task ``cancelled``; the folders stay for collect. A host
        that does not answer keeps running its tasks (their ends are unknown): the others are still stopped."""
        for host, error in self._stop_each(plan, remove=False).items():
            if host.name not in self.silent:
                self._silent(host, error.message, self.max_duration(plan) + lease_margin())

    def stop(self, plan: JobPlan, remove: bool) -> None:
        """Every reachable host at once; a lost host keeps its folder (and the job its leases) for gc."""
        errors = list(self._stop_each(plan, remove).values())
        if errors:
            raise errors[0]

    def _stop_each(self, plan: JobPlan, remove: bool) -> dict[Transport, SquallError]:
        def stop_one(host: Transport, indexes: list[int]) -> SquallError | None:
            if host.name in self.lost:
                return SquallError(f"host {host} was lost during the job ({self.lost[host.name]}); "
                                   "its job folder is left for squall gc")
            if host.name in self.silent:  # asking would wait out its timeout: it did not answer the poll
                silence = self.silent[host.name]
                return SquallError(f"host {host} has not answered since {silence.shown()}: {silence.why}")
            try:
                host.agent("stop", host.job_dir(plan.job_id), *(["remove"] if remove else []))
            except SquallError as exc:
                return exc
            return None

        return {host: error for host, error in each_host(stop_one, self.holders(plan)).items() if error}

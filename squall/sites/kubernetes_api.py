"""What the Kubernetes site asks the cluster's API: one Indexed Job's status, one index's pod log, and
commands in the job's stager pod (its files travel base64-encoded over exec's text streams).

``JobApi`` is the boundary (tests stand a fake in here); ``ClusterJobApi`` is
the real one over the official ``kubernetes`` client, with the kubeconfig
context the site names (or the in-cluster service account). ``task_states``
turns a Job's status into Squall's task states.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Protocol

from squall.errors import MissingDependency, SiteUnreachable, SquallError
from squall.job_types import JobPlan, TaskState, TaskStatus

if TYPE_CHECKING:
    from squall.store import Store


@dataclass(frozen=True)
class IndexedJobStatus:
    completed: frozenset[int]
    failed: frozenset[int]
    active: int
    deadline_exceeded: bool
    exists: bool = True


class JobApi(Protocol):
    def job_status(self, namespace: str, name: str) -> IndexedJobStatus: ...

    def pod_log(self, namespace: str, job: str, index: int) -> bytes | None: ...

    def pod_running(self, namespace: str, pod: str) -> bool: ...

    def exec(self, namespace: str, pod: str, argv: list[str], stdin: bytes | None = None) -> bytes:
        """``argv`` in the pod's container; its stdout. ``stdin`` must be text (base64): exec's streams are."""
        ...

    def resume(self, namespace: str, job: str) -> None:
        """Unsuspend the Job (its inputs are staged)."""
        ...


def parse_indexes(text: str | None) -> frozenset[int]:
    """Kubernetes' compressed index lists: ``"0-2,5,7-8"``."""
    found: set[int] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return frozenset(found)


def task_states(status: IndexedJobStatus, tasks: int, isolated: bool) -> list[TaskState]:
    """One state per index: succeeded/failed as the Job says; past its deadline, the rest timed out.
    ``isolated``: whether the site's CNI enforces the job's NetworkPolicy."""
    states = []
    for index in range(tasks):
        if index in status.completed:
            states.append(TaskState(index, TaskStatus.SUCCEEDED, exit_code=0, network_isolated=isolated))
        elif index in status.failed:
            states.append(TaskState(index, TaskStatus.FAILED, network_isolated=isolated))
        elif status.deadline_exceeded or not status.exists:
            states.append(TaskState(index, TaskStatus.TIMEOUT if status.exists else TaskStatus.FAILED,
                                    error=None if status.exists else "the Kubernetes Job is gone"))
        else:
            states.append(TaskState(index, TaskStatus.RUNNING if status.active else TaskStatus.QUEUED))
    return states


class ClusterJobApi:
    def __init__(self, context: str | None = None):
        try:
            from kubernetes import client, config
        except ImportError:
            raise MissingDependency("Kubernetes sites need the kubernetes client",
                                    hint="pip install 'squall[kubernetes]'") from None
        try:
            config.load_kube_config(context=context)
        except Exception:  # noqa: BLE001 - no kubeconfig: try the pod's service account
            try:
                config.load_incluster_config()
            except Exception as exc:  # noqa: BLE001
                raise SiteUnreachable(f"no Kubernetes credentials (kubeconfig context {context!r}): {exc}") from None
        self.batch, self.core = client.BatchV1Api(), client.CoreV1Api()
        self._errors = (client.ApiException,)

    def job_status(self, namespace: str, name: str) -> IndexedJobStatus:
        try:
            job = self.batch.read_namespaced_job_status(name, namespace)
        except self._errors as exc:
            if getattr(exc, "status", None) == 404:
                return IndexedJobStatus(frozenset(), frozenset(), 0, False, exists=False)
            raise SiteUnreachable(f"kubernetes: job {namespace}/{name}: {exc}") from None
        status = job.status
        deadline = any(c.type == "Failed" and c.reason == "DeadlineExceeded" for c in status.conditions or [])
        return IndexedJobStatus(parse_indexes(status.completed_indexes), parse_indexes(status.failed_indexes),
                                status.active or 0, deadline)

    def pod_log(self, namespace: str, job: str, index: int) -> bytes | None:
        selector = f"batch.kubernetes.io/job-name={job},batch.kubernetes.io/job-completion-index={index}"
        try:
            pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
            if not pods:
                return None
            newest = max(pods, key=lambda pod: pod.metadata.creation_timestamp)
            return self.core.read_namespaced_pod_log(newest.metadata.name, namespace).encode()
        except self._errors as exc:
            raise SiteUnreachable(f"kubernetes: logs of {namespace}/{job}[{index}]: {exc}") from None

    def pod_running(self, namespace: str, pod: str) -> bool:
        try:
            return self.core.read_namespaced_pod_status(pod, namespace).status.phase == "Running"
        except self._errors as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise SiteUnreachable(f"kubernetes: pod {namespace}/{pod}: {exc}") from None

    def exec(self, namespace: str, pod: str, argv: list[str], stdin: bytes | None = None) -> bytes:
        from kubernetes.stream import stream

        try:
            channel = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, command=argv,
                             stdin=stdin is not None, stdout=True, stderr=True, tty=False, _preload_content=False)
            if stdin is not None:
                channel.write_stdin(stdin.decode("ascii"))
            out, err = [], []
            while channel.is_open():
                channel.update(timeout=1)
                if channel.peek_stdout():
                    out.append(channel.read_stdout())
                if channel.peek_stderr():
                    err.append(channel.read_stderr())
            channel.close()
        except self._errors as exc:
            raise SiteUnreachable(f"kubernetes: exec in {namespace}/{pod}: {exc}") from None
        if channel.returncode:
            raise SquallError(f"kubernetes: {argv[0]} in {namespace}/{pod} exited {channel.returncode}: "
                              f"{''.join(err)[-500:]}")
        return "".join(out).encode()

    def resume(self, namespace: str, job: str) -> None:
        try:
            self.batch.patch_namespaced_job(job, namespace, {"spec": {"suspend": False}})
        except self._errors as exc:
            raise SiteUnreachable(f"kubernetes: resume {namespace}/{job}: {exc}") from None


class Cluster:
    """The organisation's namespace in the site's cluster, and the API to it, reached (credentials looked
    up) only once a step needs it: after the spec's own checks."""

    def __init__(self, store: Store, org_stack, connect: Callable[[], JobApi], context: str | None):
        self.store, self.org_stack, self._connect, self.context = store, org_stack, connect, context

    @cached_property
    def api(self) -> JobApi:
        return self._connect()

    def settings(self):
        from squall.programs.stack_files import load_stack

        return load_stack(str(self.org_stack))

    @property
    def namespace(self) -> str:
        return f"squall-{self.org_stack.org}"

    def job_name(self, plan: JobPlan) -> str:
        org = self.settings().org
        return f"{org.org}-{org.cluster}-job-{plan.job_id}"

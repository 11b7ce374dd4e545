"""Kubernetes objects for the components: the organisation's namespace and GPU quota, and Indexed Jobs.

Object bodies are dicts in the Kubernetes API's own shape, typed with the SDK's
``*ArgsDict`` TypedDicts so the static type check catches a misspelled key; the
tests also check every object against the real OpenAPI schemas
(kubernetes-validate), which the Pulumi mocks do not. No container is
privileged, and every job's pods may talk only to each other.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import DaemonSetSpecArgsDict
from pulumi_kubernetes.batch.v1 import JobSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    LimitRangeSpecArgsDict,
    PodSpecArgsDict,
    ResourceQuotaSpecArgsDict,
    ResourceRequirementsArgsDict,
    SecurityContextArgsDict,
    TolerationArgsDict,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.networking.v1 import NetworkPolicyPeerArgsDict, NetworkPolicySpecArgsDict

from squall.programs.components import GpuNodePoolArgs, JobStackArgs, KubernetesWork
from squall.programs.design import ClusterDesign, PoolDesign, k8s_labels
from squall.runtime import runtime_path, runtime_version

DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
GPU = "nvidia.com/gpu"
GPU_NODES = {"nvidia.com/gpu.present": "true"}  # the label NVIDIA's GPU feature discovery puts on GPU nodes
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}  # `up` returns once the Job exists; the site watches it
TASK_UID = 10001
TASK_MOUNT = "/squall-task"  # a task's own folder of the job volume, in its pod
VOLUME_MOUNT = "/work"  # the whole job volume, in the stager pod
PULL_ALLOWANCE = 120  # seconds per wave of pods for scheduling and pulling the image, on top of the walltime
RESTRICTED: SecurityContextArgsDict = {"allow_privilege_escalation": False, "privileged": False,
                                        "capabilities": {"drop": ["ALL"]}}


def metadata(name: str, labels: dict[str, str], namespace: str | None = None,
             annotations: dict[str, str] | None = None) -> ObjectMetaArgsDict:
    meta: ObjectMetaArgsDict = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return meta


def priority_class_name(cluster: ClusterDesign, pool: PoolDesign) -> str:
    return f"{cluster.namespace}-{pool.spec.name}"


def tolerations(pool: PoolDesign) -> list[TolerationArgsDict]:
    return [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in pool.spec.taints]


def gpu_node_pool(name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions) -> int:
    """The organisation's namespace, sized to ``desired`` nodes of the pool, and the NVIDIA device plugin."""
    cluster, pool = args.cluster, args.pool
    spec, labels, namespace = pool.spec, k8s_labels(pool.tags), cluster.namespace
    k8s.core.v1.Namespace(f"{name}-namespace", metadata=metadata(namespace, labels), opts=opts)
    nodes = spec.desired
    quota: ResourceQuotaSpecArgsDict = {
        "hard": {
            "requests.cpu": str(spec.cpus_per_node * nodes), "limits.cpu": str(spec.cpus_per_node * nodes),
            "requests.memory": f"{spec.memory_gib_per_node * nodes}Gi",
            "limits.memory": f"{spec.memory_gib_per_node * nodes}Gi",
            f"requests.{GPU}": str(spec.gpus_per_node * nodes), "pods": str(spec.cpus_per_node * nodes),
        }}
    k8s.core.v1.ResourceQuota(f"{name}-quota", metadata=metadata(f"{pool.name}-quota", labels, namespace),
                              spec=quota, opts=opts)
    node_max = {"cpu": str(spec.cpus_per_node), "memory": f"{spec.memory_gib_per_node}Gi"}
    if spec.gpus_per_node:
        node_max[GPU] = str(spec.gpus_per_node)
    limits: LimitRangeSpecArgsDict = {
        "limits": [{"type": "Container", "max": node_max,
                    "default": {"cpu": "1", "memory": "2Gi"}, "default_request": {"cpu": "500m", "memory": "1Gi"}}]}
    k8s.core.v1.LimitRange(f"{name}-limits", metadata=metadata(f"{pool.name}-limits", labels, namespace),
                           spec=limits, opts=opts)
    k8s.scheduling.v1.PriorityClass(f"{name}-priority", metadata=metadata(priority_class_name(cluster, pool), labels),
                                    value=1000, global_default=False, preemption_policy="Never",
                                    description=f"Squall jobs of {cluster.spec.org}", opts=opts)
    plugin_labels = {**labels, "app.kubernetes.io/name": "nvidia-device-plugin"}
    small = {"cpu": "50m", "memory": "64Mi"}
    plugin_pod: PodSpecArgsDict = {
        "priority_class_name": priority_class_name(cluster, pool),
        "tolerations": tolerations(pool),
        # only where GPUs are: the pool's own labels, else the label GPU feature discovery sets
        "node_selector": dict(spec.labels) or dict(GPU_NODES),
        "automount_service_account_token": False,
        "security_context": {"seccomp_profile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "nvidia-device-plugin", "image": DEVICE_PLUGIN_IMAGE, "image_pull_policy": "Always",
            "security_context": {**RESTRICTED, "read_only_root_filesystem": True},
            # a node without a working driver must not crash-loop the plugin (NVIDIA's documented setting)
            "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
            "resources": {"requests": small, "limits": {"cpu": "100m", "memory": "128Mi"}},
            "volume_mounts": [{"name": "device-plugins", "mount_path": "/var/lib/kubelet/device-plugins"}],
        }],
        "volumes": [{"name": "device-plugins", "host_path": {"path": "/var/lib/kubelet/device-plugins"}}],
    }
    plugin_selector = {"app.kubernetes.io/name": "nvidia-device-plugin", "squall.io/pool": spec.name}
    plugin: DaemonSetSpecArgsDict = {
        "selector": {"match_labels": plugin_selector},
        "template": {"metadata": {"labels": plugin_labels}, "spec": plugin_pod},
    }
    k8s.apps.v1.DaemonSet(f"{name}-device-plugin", metadata=metadata(f"{pool.name}-device-plugin", labels, namespace),
                          spec=plugin, opts=opts)
    no_network: NetworkPolicySpecArgsDict = {  # it talks to the kubelet over a socket on the node, nothing else
        "pod_selector": {"match_labels": plugin_selector}, "policy_types": ["Ingress", "Egress"]}
    k8s.networking.v1.NetworkPolicy(f"{name}-device-plugin-isolation",
                                    metadata=metadata(f"{pool.name}-device-plugin-isolation", labels, namespace),
                                    spec=no_network, opts=opts)
    return nodes


def job_stack(name: str, args: JobStackArgs, opts: pulumi.ResourceOptions) -> list[pulumi.Output[str]]:
    """An Indexed Job (one completion per task), its runtime, and a policy that keeps its traffic inside it."""
    cluster, job, work = args.cluster, args.job, args.work
    if work is None:
        raise ValueError("JobStack on kubernetes needs work (image, command, tasks)")
    if len(job.name) > 63:
        raise ValueError(f"job stack name {job.name!r} is longer than Kubernetes' 63 characters")
    labels, namespace = k8s_labels(job.tags), cluster.namespace
    selector = {"squall.io/job": job.tags["squall:job"]}
    version = runtime_version()
    runtime = k8s.core.v1.ConfigMap(f"{name}-runtime", metadata=metadata(f"{job.name}-runtime", labels, namespace),
                                    data={"squall_runtime.py": runtime_path().read_text()}, opts=opts)
    pool = cluster.pools[0] if cluster.pools else None
    volume = _job_volume(name, job.name, labels, namespace, work, cluster, job.ttl_seconds, opts) \
        if work.volume_gib else None
    amounts = {"cpu": str(work.cpus), "memory": f"{work.memory_gib}Gi", **({GPU: str(work.gpus)} if work.gpus else {})}
    resources: ResourceRequirementsArgsDict = {"requests": amounts, "limits": amounts}
    waves = -(-work.tasks // min(job.nodes, work.tasks))
    pod_spec: PodSpecArgsDict = {
        "restart_policy": "Never",
        "active_deadline_seconds": work.walltime,  # each task is killed at its walltime
        "automount_service_account_token": False,
        # a high UID that no host account has; the image's own files are read-only, /tmp is the pod's own
        "security_context": {"run_as_non_root": True, "run_as_user": TASK_UID, "run_as_group": TASK_UID,
                             "seccomp_profile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "task", "image": work.image, "command": list(work.command), "image_pull_policy": "Always",
            "env": [{"name": "SQUALL_RUNTIME", "value": f"/opt/squall/runtime/{version}/squall_runtime.py"}],
            "resources": resources,
            "security_context": {**RESTRICTED, "read_only_root_filesystem": True, "run_as_user": TASK_UID},
            "volume_mounts": [{"name": "runtime", "mount_path": f"/opt/squall/runtime/{version}", "read_only": True},
                              {"name": "scratch", "mount_path": "/tmp"},
                              *([{"name": "work", "mount_path": TASK_MOUNT,
                                  "sub_path_expr": "task-$(JOB_COMPLETION_INDEX)"}] if volume else [])],
        }],
        "volumes": [{"name": "runtime", "config_map": {"name": runtime.metadata.name}},
                    {"name": "scratch", "empty_dir": {}},
                    *([{"name": "work", "persistent_volume_claim": {"claim_name": volume}}] if volume else [])],
    }
    if pool is not None:
        pod_spec["priority_class_name"] = priority_class_name(cluster, pool)
        pod_spec["tolerations"] = tolerations(pool)
    indexed_spec: JobSpecArgsDict = {
        "completion_mode": "Indexed", "completions": work.tasks, "parallelism": min(job.nodes, work.tasks),
        # each index is tried once and fails alone; the others still run (status.failedIndexes says which)
        "backoff_limit_per_index": 0, "ttl_seconds_after_finished": 600,
        "suspend": bool(volume),  # with a volume, the site resumes it once the inputs are staged
        "active_deadline_seconds": min(job.ttl_seconds, waves * (work.walltime + PULL_ALLOWANCE)),
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    indexed = k8s.batch.v1.Job(f"{name}-tasks", metadata=metadata(job.name, labels, namespace, SKIP_AWAIT),
                               spec=indexed_spec, opts=opts)
    within_job: list[NetworkPolicyPeerArgsDict] = [{"pod_selector": {"match_labels": selector}}]
    isolation: NetworkPolicySpecArgsDict = {"pod_selector": {"match_labels": selector},
                                            "policy_types": ["Ingress", "Egress"],
                                            "ingress": [{"from_": within_job}], "egress": [{"to": within_job}]}
    k8s.networking.v1.NetworkPolicy(f"{name}-isolation", metadata=metadata(f"{job.name}-isolation", labels, namespace),
                                    spec=isolation, opts=opts)
    return [indexed.metadata.name]


def _job_volume(name: str, job_name: str, labels: dict[str, str], namespace: str, work: KubernetesWork,
                cluster: ClusterDesign, ttl: int, opts: pulumi.ResourceOptions) -> str:
    """The job's volume (ReadWriteMany) and the stager pod the site execs into to stage and collect files."""
    template = cluster.spec.job_stack
    if template is None or not template.volume_class:
        raise ValueError("a Kubernetes job volume needs job_stack.volume_class")
    claim = f"{job_name}-work"
    k8s.core.v1.PersistentVolumeClaim(
        f"{name}-work", metadata=metadata(claim, labels, namespace),
        spec={"access_modes": ["ReadWriteMany"], "storage_class_name": template.volume_class,
              "resources": {"requests": {"storage": f"{work.volume_gib}Gi"}}}, opts=opts)
    small = {"cpu": "100m", "memory": "128Mi"}
    stager: PodSpecArgsDict = {
        "restart_policy": "Never", "automount_service_account_token": False, "active_deadline_seconds": ttl,
        "security_context": {"run_as_non_root": True, "run_as_user": TASK_UID, "run_as_group": TASK_UID,
                             "fs_group": TASK_UID, "seccomp_profile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "stager", "image": work.image, "image_pull_policy": "Always", "command": ["sleep", str(ttl)],
            "security_context": {**RESTRICTED, "read_only_root_filesystem": True, "run_as_user": TASK_UID},
            "resources": {"requests": small, "limits": small},
            "volume_mounts": [{"name": "work", "mount_path": VOLUME_MOUNT}],
        }],
        "volumes": [{"name": "work", "persistent_volume_claim": {"claim_name": claim}}],
    }
    k8s.core.v1.Pod(f"{name}-stager", metadata=metadata(f"{job_name}-stager", labels, namespace), spec=stager,
                    opts=opts)
    return claim

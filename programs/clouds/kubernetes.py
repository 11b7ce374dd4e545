"""Kubernetes objects for the components: the organisation's namespace and GPU quota, and Indexed Jobs.

Object bodies are plain dicts in the Kubernetes API's own shape; the tests
check every one against the real OpenAPI schemas (kubernetes-validate), which
the Pulumi mocks do not. No container is privileged, and every job's pods may
talk only to each other.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from squall.programs.components import GpuNodePoolArgs, JobStackArgs
from squall.programs.design import ClusterDesign, PoolDesign, k8s_labels
from squall.runtime import runtime_path, runtime_version

DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
GPU = "nvidia.com/gpu"
RESTRICTED = {"allowPrivilegeEscalation": False, "privileged": False, "capabilities": {"drop": ["ALL"]}}


def metadata(name: str, labels: dict[str, str], namespace: str | None = None) -> dict:
    return {"name": name, "labels": labels, **({"namespace": namespace} if namespace else {})}


def priority_class_name(cluster: ClusterDesign, pool: PoolDesign) -> str:
    return f"{cluster.namespace}-{pool.spec.name}"


def tolerations(pool: PoolDesign) -> list[dict]:
    return [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in pool.spec.taints]


def gpu_node_pool(name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions) -> int:
    """The organisation's namespace, sized to ``desired`` nodes of the pool, and the NVIDIA device plugin."""
    cluster, pool = args.cluster, args.pool
    spec, labels, namespace = pool.spec, k8s_labels(pool.tags), cluster.namespace
    k8s.core.v1.Namespace(f"{name}-namespace", metadata=metadata(namespace, labels), opts=opts)
    nodes = spec.desired
    k8s.core.v1.ResourceQuota(f"{name}-quota", metadata=metadata(f"{pool.name}-quota", labels, namespace), spec={
        "hard": {
            "requests.cpu": str(spec.cpus_per_node * nodes), "limits.cpu": str(spec.cpus_per_node * nodes),
            "requests.memory": f"{spec.memory_gib_per_node * nodes}Gi",
            "limits.memory": f"{spec.memory_gib_per_node * nodes}Gi",
            f"requests.{GPU}": str(spec.gpus_per_node * nodes), "pods": str(spec.cpus_per_node * nodes),
        }}, opts=opts)
    node_max = {"cpu": str(spec.cpus_per_node), "memory": f"{spec.memory_gib_per_node}Gi"}
    if spec.gpus_per_node:
        node_max[GPU] = str(spec.gpus_per_node)
    k8s.core.v1.LimitRange(f"{name}-limits", metadata=metadata(f"{pool.name}-limits", labels, namespace), spec={
        "limits": [{"type": "Container", "max": node_max,
                    "default": {"cpu": "1", "memory": "2Gi"}, "defaultRequest": {"cpu": "500m", "memory": "1Gi"}}]},
        opts=opts)
    k8s.scheduling.v1.PriorityClass(f"{name}-priority", metadata=metadata(priority_class_name(cluster, pool), labels),
                                    value=1000, global_default=False, preemption_policy="Never",
                                    description=f"Squall jobs of {cluster.spec.org}", opts=opts)
    plugin_labels = {**labels, "app.kubernetes.io/name": "nvidia-device-plugin"}
    k8s.apps.v1.DaemonSet(f"{name}-device-plugin", metadata=metadata(f"{pool.name}-device-plugin", labels, namespace),
                          spec={
        "selector": {"matchLabels": {"app.kubernetes.io/name": "nvidia-device-plugin", "squall.io/pool": spec.name}},
        "template": {
            "metadata": {"labels": plugin_labels},
            "spec": {
                "priorityClassName": priority_class_name(cluster, pool),
                "tolerations": tolerations(pool),
                **({"nodeSelector": dict(spec.labels)} if spec.labels else {}),
                "containers": [{
                    "name": "nvidia-device-plugin", "image": DEVICE_PLUGIN_IMAGE,
                    "securityContext": RESTRICTED,
                    "volumeMounts": [{"name": "device-plugins", "mountPath": "/var/lib/kubelet/device-plugins"}],
                }],
                "volumes": [{"name": "device-plugins", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}],
            }}}, opts=opts)
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
    resources: dict[str, dict[str, str]] = {
        "requests": {"cpu": str(work.cpus), "memory": f"{work.memory_gib}Gi"},
        "limits": {"cpu": str(work.cpus), "memory": f"{work.memory_gib}Gi"},
    }
    if work.gpus:
        resources["limits"][GPU] = str(work.gpus)
        resources["requests"][GPU] = str(work.gpus)
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "task", "image": work.image, "command": list(work.command),
            "env": [{"name": "SQUALL_RUNTIME", "value": f"/opt/squall/runtime/{version}/squall_runtime.py"}],
            "resources": resources, "securityContext": RESTRICTED,
            "volumeMounts": [{"name": "runtime", "mountPath": f"/opt/squall/runtime/{version}", "readOnly": True}],
        }],
        "volumes": [{"name": "runtime", "configMap": {"name": runtime.metadata.name}}],
    }
    if pool is not None:
        pod_spec["priorityClassName"] = priority_class_name(cluster, pool)
        pod_spec["tolerations"] = tolerations(pool)
    indexed = k8s.batch.v1.Job(f"{name}-tasks", metadata=metadata(job.name, labels, namespace), spec={
        "completionMode": "Indexed", "completions": work.tasks, "parallelism": min(job.nodes, work.tasks),
        "backoffLimit": 0, "ttlSecondsAfterFinished": 600,
        "activeDeadlineSeconds": job.ttl_seconds,
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }, opts=opts)
    within_job = [{"podSelector": {"matchLabels": selector}}]
    k8s.networking.v1.NetworkPolicy(f"{name}-isolation", metadata=metadata(f"{job.name}-isolation", labels, namespace),
                                    spec={"podSelector": {"matchLabels": selector},
                                          "policyTypes": ["Ingress", "Egress"],
                                          "ingress": [{"from": within_job}], "egress": [{"to": within_job}]},
                                    opts=opts)
    return [indexed.metadata.name]

"""The four Squall components: OrgCluster, GpuNodePool, VmBank and JobStack.

Each takes a typed args dataclass built from the design step (names, tags and
counts are computed there, never here), registers every child with
``parent=self`` and ends with ``register_outputs``. The cloud-specific
resources live in ``squall.programs.clouds.<cloud>``; a component only picks the
cloud. Nothing here reads ``pulumi.Config``: the stack programs
(``squall.programs.stacks``) do, so the Automation API can call the same code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Sequence

import pulumi

from squall.programs.design import BankDesign, ClusterDesign, JobStackDesign, PoolDesign


@dataclass(frozen=True)
class Placement:
    """Where compute nodes go, as the organisation's cluster (or its stack outputs) says."""

    subnet_ids: Sequence[pulumi.Input[str]] = ()  # AWS: private subnets, one per zone
    security_group_ids: Sequence[pulumi.Input[str]] = ()  # AWS: the compute group
    network_id: pulumi.Input[str] | None = None  # OpenStack: the cluster network
    security_group_names: Sequence[pulumi.Input[str]] = ()  # OpenStack: the compute group
    vpc_id: pulumi.Input[str] | None = None  # AWS: the cluster VPC (job stacks add their own group)
    intra_cidr: str = ""  # the cluster network: job nodes' firewall lets it in and out
    ssh_from: tuple[str, ...] = ()  # head node / controller addresses allowed to SSH to job nodes


@dataclass(frozen=True)
class OrgClusterArgs:
    cluster: ClusterDesign
    controller_public_key: str


@dataclass(frozen=True)
class GpuNodePoolArgs:
    cluster: ClusterDesign
    pool: PoolDesign
    controller_public_key: str
    placement: Placement = field(default_factory=Placement)


@dataclass(frozen=True)
class VmBankArgs:
    cluster: ClusterDesign
    bank: BankDesign
    controller_public_key: str
    placement: Placement = field(default_factory=Placement)


@dataclass(frozen=True)
class KubernetesWork:
    """What the pods of a Kubernetes job stack run (AWS and OpenStack nodes get the runtime by SSH)."""

    image: str
    command: Sequence[str]
    tasks: int
    cpus: float = 1
    memory_gib: float = 2
    gpus: int = 0
    walltime: int = 3600  # seconds: each pod's deadline, and with the waves of pods the Job's
    volume_gib: int = 0  # a per-job volume staged through a stager pod; the Job starts suspended


@dataclass(frozen=True)
class JobStackArgs:
    cluster: ClusterDesign
    job: JobStackDesign
    controller_public_key: str
    placement: Placement = field(default_factory=Placement)
    work: KubernetesWork | None = None  # Kubernetes only


def cloud(name: str) -> ModuleType:
    """``squall.programs.clouds.<name>``, imported on first use (the provider SDKs are large)."""
    return importlib.import_module(f"squall.programs.clouds.{name}")


class OrgCluster(pulumi.ComponentResource):
    """An organisation's persistent cluster: network, security groups, shared filesystem, head node."""

    placement: Placement

    def __init__(self, name: str, args: OrgClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("squall:cluster:OrgCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        provider = args.cluster.spec.cloud
        if provider == "kubernetes":
            raise ValueError("OrgCluster: kubernetes organisations have no cluster of their own (pools only)")
        built = cloud(provider).org_cluster(name, args, child)
        self.placement = built.placement
        self.head_address = built.head_address
        self.public_address = built.public_address
        self.register_outputs({"head_address": built.head_address, "public_address": built.public_address,
                               "network_id": built.placement.network_id or built.placement.vpc_id})


class GpuNodePool(pulumi.ComponentResource):
    """A pool of GPU nodes: an Auto Scaling group, OpenStack servers, or a Kubernetes namespace quota."""

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("squall:pool:GpuNodePool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.desired = cloud(args.cluster.spec.cloud).gpu_node_pool(name, args, child)
        self.register_outputs({"desired": self.desired})


class VmBank(pulumi.ComponentResource):
    """Idle VMs kept ready to be claimed: OpenStack servers or an AWS warm pool."""

    def __init__(self, name: str, args: VmBankArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("squall:bank:VmBank", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.servers = cloud(args.cluster.spec.cloud).vm_bank(name, args, child)
        self.register_outputs({"servers": self.servers, "target": args.bank.spec.idle_target})


class JobStack(pulumi.ComponentResource):
    """One cloud job's machines (or Indexed Job), isolated from everything but the job itself."""

    def __init__(self, name: str, args: JobStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("squall:job:JobStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.nodes = cloud(args.cluster.spec.cloud).job_stack(name, args, child)
        self.register_outputs({"nodes": self.nodes, "expires_at": args.job.expires_at})

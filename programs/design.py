"""The design step: from an organisation spec to every name, tag, count and subnet.

Plain Python, no Pulumi: the components (issue 5) build resources from a
``ClusterDesign`` and never compute a name or a tag themselves, so all of it is
unit-tested here. Impossible specs fail with the field named: a CIDR too small
for its zones, a desired size outside min..max, an unknown data centre.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from squall.errors import InvalidInput, Refused
from squall.inventory import Amount
from squall.validation import StrictModel, validate

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")]
JOB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")  # also a Kubernetes label value and part of names
MIN_SUBNET_PREFIX = 28  # the smallest subnet AWS accepts (/28, 16 addresses); OpenStack works with it too

# Availability zones Squall knows per AWS region. OpenStack zones are site-specific:
# the spec lists the cloud's own (``openstack.known_zones``).
AWS_ZONES = {
    "eu-west-1": ("eu-west-1a", "eu-west-1b", "eu-west-1c"),
    "eu-west-3": ("eu-west-3a", "eu-west-3b", "eu-west-3c"),
    "eu-central-1": ("eu-central-1a", "eu-central-1b", "eu-central-1c"),
    "us-east-1": ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"),
    "us-west-2": ("us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"),
}


class Taint(StrictModel):
    key: str = Field(min_length=1, max_length=63)
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class PoolSpec(StrictModel):
    name: Slug
    instance_type: str = Field(min_length=1)
    gpus_per_node: int = Field(0, ge=0, le=16)
    min: int = Field(0, ge=0)
    desired: int = Field(0, ge=0)
    max: int = Field(ge=0, le=1000)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    # What one node of the pool has: Kubernetes counts it into the namespace quota; GPU cloud jobs are fitted on it.
    cpus_per_node: int = Field(8, ge=1, le=1024)
    memory_gib_per_node: int = Field(64, ge=1, le=16384)

    @model_validator(mode="after")
    def _sizes(self) -> "PoolSpec":
        if not self.min <= self.desired <= self.max:
            raise ValueError(f"desired ({self.desired}) must be within min..max ({self.min}..{self.max})")
        return self


class BankSpec(StrictModel):
    name: Slug
    image: str = Field(min_length=1)
    flavour: str = Field(min_length=1)
    idle_target: int = Field(ge=0)
    max_size: int = Field(ge=1, le=500)
    max_age_hours: float = Field(24, gt=0)
    per_user_quota: int = Field(2, ge=1)  # VMs one user may hold claimed at once
    claim_hours: float = Field(8, gt=0, le=24 * 7)  # how long a claim lasts unless released
    # What happens to a VM a cloud site's job ran on: destroyed and replaced, or back to idle (job folder gone).
    after_job: Literal["release", "recycle"] = "release"

    @model_validator(mode="after")
    def _target(self) -> "BankSpec":
        if self.idle_target > self.max_size:
            raise ValueError(f"idle_target ({self.idle_target}) exceeds max_size ({self.max_size})")
        return self


class JobStackSpec(StrictModel):
    nodes: int = Field(1, ge=1, le=1000)
    flavour: str = Field(min_length=1)
    # What one machine of ``flavour`` has; a job asking more per task is refused before anything is made.
    cpus: int | None = Field(None, ge=1, le=1024)
    memory_gib: float | None = Field(None, gt=0, le=16384)
    ttl_hours: float = Field(4, gt=0, le=24 * 14)
    image: str | None = None  # OpenStack image name or Kubernetes container image; AWS looks the AMI up
    # Kubernetes: the storage class (ReadWriteMany) of the per-job volume inputs are staged to and outputs
    # collected from; without it, jobs with input files or a script are refused there.
    volume_class: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{0,252}$")


class NetworkSpec(StrictModel):
    cidr: str
    public_subnet: bool = False  # a public subnet and a NAT gateway, only when asked
    operator_cidrs: list[str] = Field(default_factory=list)  # who may SSH to the head node

    @model_validator(mode="after")
    def _cidrs(self) -> "NetworkSpec":
        network = ipaddress.ip_network(self.cidr, strict=True)
        if network.version != 4 or not network.is_private:
            raise ValueError(f"cidr {self.cidr} must be a private IPv4 range")
        for index, cidr in enumerate(self.operator_cidrs):
            if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
                raise ValueError(f"operator_cidrs[{index}]: {cidr} opens SSH to the whole internet")
        return self


class SharedFsSpec(StrictModel):
    kind: Literal["efs", "fsx-lustre", "manila", "cinder-nfs"]
    size_gb: int = Field(100, ge=1, le=100_000)


class OpenStackSpec(StrictModel):
    external_network: str = Field(min_length=1)
    known_zones: list[str] = Field(min_length=1)
    public_key: str = Field(min_length=1)
    head_image: str = "debian-12"
    gpu_image: str = "debian-12-nvidia"
    # Encryption at rest is a volume-type property on OpenStack: name the cloud's encrypted type.
    encrypted_volume_type: str = Field("encrypted", min_length=1)
    root_volume_gb: int = Field(40, ge=10, le=2000)


class FlavourPrice(StrictModel):
    """What one machine of a flavour (instance type) costs, in the organisation's ``prices.currency``."""

    per_node_hour: Amount
    spin_up_per_node: Amount = Decimal(0)
    storage_per_gb_week: Amount = Decimal(0)
    data_in_per_gb: Amount = Decimal(0)
    data_out_per_gb: Amount = Decimal(0)


class CloudPrices(StrictModel):
    """The organisation's prices per flavour, with where they come from; a flavour not listed is unpriced."""

    currency: str = Field(pattern=r"^([A-Z]{3}|credits)$")
    source: str = Field(min_length=1)
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    flavours: dict[str, FlavourPrice] = Field(default_factory=dict)


class OperatorSpec(StrictModel):
    """A named sudo-capable account on the head node, with the operator's key (else the cloud's default user)."""

    user: str = Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    public_key: str = Field(min_length=1)


class OrgSpec(StrictModel):
    org: Slug
    project: Slug = "default"
    cluster: Slug = "main"
    cloud: Literal["aws", "openstack", "kubernetes"]
    region: str = Field(min_length=1)
    availability_zones: list[str] = Field(default_factory=list)
    data_centre: str | None = None  # a required placement: everything goes there
    network: NetworkSpec | None = None
    shared_fs: SharedFsSpec | None = None
    head_node_flavour: str | None = None
    operator: OperatorSpec | None = None
    # The organisation's own first-boot shell script for the head, pool and bank machines (not job nodes).
    boot_script: str | None = Field(None, min_length=1)
    openstack: OpenStackSpec | None = None
    pools: list[PoolSpec] = Field(default_factory=list)
    banks: list[BankSpec] = Field(default_factory=list)
    job_stack: JobStackSpec | None = None
    prices: CloudPrices | None = None

    @model_validator(mode="after")
    def _shape(self) -> "OrgSpec":
        if self.availability_zones and self.data_centre:
            raise ValueError("give availability_zones or data_centre, not both")
        if self.cloud != "kubernetes" and (self.network is None or self.head_node_flavour is None):
            raise ValueError(f"a {self.cloud} organisation needs 'network' and 'head_node_flavour'")
        if self.cloud == "openstack" and self.openstack is None:
            raise ValueError("an openstack organisation needs 'openstack' (external_network, known_zones, public_key)")
        fs_clouds = {"efs": "aws", "fsx-lustre": "aws", "manila": "openstack", "cinder-nfs": "openstack"}
        if self.shared_fs and fs_clouds[self.shared_fs.kind] != self.cloud:
            raise ValueError(f"shared_fs.kind {self.shared_fs.kind} is not available on {self.cloud}")
        if self.cloud == "kubernetes" and len(self.pools) != 1:
            raise ValueError("pools: a kubernetes organisation has exactly one pool (its namespace and GPU quota)")
        if self.cloud == "kubernetes" and self.banks:
            raise ValueError("banks: idle VM banks need aws or openstack")
        for kind, items in (("pools", self.pools), ("banks", self.banks)):
            names = [item.name for item in items]
            if len(names) != len(set(names)):
                raise ValueError(f"{kind}: names must be unique")
        return self


@dataclass(frozen=True)
class Subnet:
    name: str
    cidr: str
    zone: str
    public: bool


@dataclass(frozen=True)
class PoolDesign:
    name: str  # resource name, e.g. acme-main-gpu-a100
    spec: PoolSpec
    tags: dict[str, str]


@dataclass(frozen=True)
class BankDesign:
    name: str
    spec: BankSpec
    tags: dict[str, str]
    metadata: dict[str, str]  # on every idle server: squall-bank, squall-state
    slots: tuple[int, ...] = ()  # the bank's servers (idle or claimed), by slot number
    claimed: tuple[int, ...] = ()  # slots handed out (their metadata says squall-state=claimed)


@dataclass(frozen=True)
class ClusterDesign:
    spec: OrgSpec
    name: str  # <org>-<cluster>
    zones: tuple[str, ...]
    subnets: tuple[Subnet, ...]
    tags: dict[str, str]
    pools: tuple[PoolDesign, ...] = ()
    banks: tuple[BankDesign, ...] = ()
    namespace: str = ""  # Kubernetes: the organisation's namespace

    @property
    def private_subnets(self) -> tuple[Subnet, ...]:
        return tuple(s for s in self.subnets if not s.public)


@dataclass(frozen=True)
class JobMachine:
    """What a job's nodes are: the job flavour, or a GPU pool's instance type (and the GPU image)."""

    flavour: str
    gpus: int = 0
    pool: str | None = None  # the GPU pool whose instance type this is


@dataclass(frozen=True)
class JobStackDesign:
    name: str  # <org>-<cluster>-job-<job-id>
    nodes: int
    flavour: str
    tags: dict[str, str]
    expires_at: int
    ttl_seconds: int
    gpu: bool = False  # the nodes boot the organisation's GPU image


def job_machine(spec: OrgSpec, cpus: float, memory_gib: float, gpus: int) -> JobMachine:
    """The machine one task of this size runs on: the job flavour without GPUs, else the GPU pool with the
    fewest GPUs that fit. ``Refused`` (exit 4) names what is missing when nothing fits."""
    template = spec.job_stack
    if template is None:
        raise Refused(f"organisation {spec.org}: no job_stack section, so no cloud jobs")
    if gpus == 0:
        short = [f"{what} (a task asks {asked:g}, {template.flavour} has {has:g})"
                 for what, asked, has in (("cpus", cpus, template.cpus), ("memory_gib", memory_gib, template.memory_gib))
                 if has is not None and asked > has]
        if short:
            raise Refused(f"resources: no machine of organisation {spec.org} fits a task: " + "; ".join(short),
                          hint="ask less per task, or give job_stack a larger flavour (and its cpus/memory_gib)")
        return JobMachine(template.flavour)
    fitting = sorted((p for p in spec.pools if p.gpus_per_node >= gpus and p.cpus_per_node >= cpus
                      and p.memory_gib_per_node >= memory_gib), key=lambda p: (p.gpus_per_node, p.name))
    if not fitting:
        offered = ", ".join(f"{p.name}: {p.gpus_per_node} GPUs, {p.cpus_per_node} cpus, {p.memory_gib_per_node} GiB"
                            for p in spec.pools if p.gpus_per_node) or "none"
        raise Refused(f"resources: organisation {spec.org} has no GPU machine for a task asking {gpus} GPU(s), "
                      f"{cpus:g} cpus, {memory_gib:g} GiB (GPU pools: {offered})",
                      hint="ask fewer GPUs per task, or add a pool with gpus_per_node to the organisation")
    return JobMachine(fitting[0].instance_type, fitting[0].gpus_per_node, fitting[0].name)


def load_org(raw: object, source: str = "organisation") -> OrgSpec:
    return validate(OrgSpec, raw, source, "organisation spec")


def base_tags(spec: OrgSpec) -> dict[str, str]:
    return {
        "managed-by": "squall",
        "squall:org": spec.org,
        "squall:project": spec.project,
        "squall:cluster": spec.cluster,
    }


def design(spec: OrgSpec, stack: str | None = None, store: str = "") -> ClusterDesign:
    """Every name, tag, count and subnet of an organisation's persistent cluster.

    ``stack`` (the Pulumi stack being built) becomes the ``squall:stack`` tag, by
    which ``squall gc`` tells a live stack's resources from leftovers; ``store``
    (the Squall store driving it) the ``squall:store`` tag, without which gc
    never takes a leftover for its own."""
    name = f"{spec.org}-{spec.cluster}"
    tags = {**base_tags(spec), **({"squall:stack": stack} if stack else {}), **({"squall:store": store} if store else {})}
    zones = _zones(spec)
    subnets = _subnets(name, spec, zones) if spec.network else ()
    pools = tuple(PoolDesign(f"{name}-{p.name}", p, {**tags, "squall:pool": p.name}) for p in spec.pools)
    banks = tuple(
        BankDesign(f"{name}-{b.name}", b, {**tags, "squall:bank": b.name},
                   {"squall-bank": b.name, "squall-state": "idle"}, tuple(range(b.idle_target)))
        for b in spec.banks
    )
    return ClusterDesign(spec, name, zones, subnets, tags, pools, banks,
                         namespace=f"squall-{spec.org}" if spec.cloud == "kubernetes" else "")


def design_job_stack(cluster: ClusterDesign, job_id: str, now: float, nodes: int | None = None,
                     store: str = "", machine: JobMachine | None = None) -> JobStackDesign:
    """An ephemeral job stack of the organisation, tagged with its expiry (and the store that made it)."""
    template = cluster.spec.job_stack
    if not JOB_ID.match(job_id):
        raise InvalidInput(f"job id {job_id!r}: use lower-case letters, digits and '-' (at most 40)")
    if template is None:
        raise InvalidInput(f"organisation {cluster.spec.org}: no job_stack section, so no cloud jobs")
    count = nodes if nodes is not None else template.nodes
    if not 1 <= count <= 1000:
        raise InvalidInput(f"job stack nodes: {count} is outside 1..1000")
    ttl = int(template.ttl_hours * 3600)
    tags = {**cluster.tags, "squall:job": job_id, "squall:expires": str(int(now) + ttl)}
    if store:
        tags["squall:store"] = store
    if machine is not None and machine.pool:
        tags["squall:pool"] = machine.pool
    return JobStackDesign(f"{cluster.name}-job-{job_id}", count, machine.flavour if machine else template.flavour,
                          tags, int(now) + ttl, ttl, gpu=bool(machine and machine.gpus))


def _zones(spec: OrgSpec) -> tuple[str, ...]:
    if spec.cloud == "kubernetes":
        return ()
    if spec.cloud == "openstack":
        assert spec.openstack is not None  # OrgSpec requires it for openstack
        known: tuple[str, ...] | None = tuple(spec.openstack.known_zones)
    else:
        known = AWS_ZONES.get(spec.region)
    if known is None:
        raise InvalidInput(f"region: {spec.region!r} is not a region Squall knows for aws "
                           f"({', '.join(sorted(AWS_ZONES))})")
    wanted = [spec.data_centre] if spec.data_centre else (spec.availability_zones or list(known[:1]))
    for index, zone in enumerate(wanted):
        if zone not in known:
            where = "data_centre" if spec.data_centre else f"availability_zones[{index}]"
            raise InvalidInput(f"{where}: unknown data centre {zone!r} in {spec.region} "
                               f"(known: {', '.join(known)})")
    return tuple(wanted)


def _subnets(name: str, spec: OrgSpec, zones: tuple[str, ...]) -> tuple[Subnet, ...]:
    """One private subnet per zone (and one public, if asked), equal slices of the network."""
    assert spec.network is not None  # only called when there is one
    network = ipaddress.ip_network(spec.network.cidr)
    public = spec.network.public_subnet
    count = len(zones) + (1 if public else 0)
    prefix = network.prefixlen + max(0, math.ceil(math.log2(count)))
    if prefix > MIN_SUBNET_PREFIX:
        raise InvalidInput(
            f"network.cidr: {network} is too small for {count} subnets "
            f"({len(zones)} zones{' + public' if public else ''}); "
            f"each needs at least a /{MIN_SUBNET_PREFIX}, so use a /{MIN_SUBNET_PREFIX - math.ceil(math.log2(count))} "
            "or larger"
        )
    slices = list(network.subnets(new_prefix=prefix))
    subnets = [Subnet(f"{name}-private-{zone}", str(slices[i]), zone, False) for i, zone in enumerate(zones)]
    if public:
        subnets.append(Subnet(f"{name}-public-{zones[0]}", str(slices[len(zones)]), zones[0], True))
    return tuple(subnets)


def resize(cluster: ClusterDesign, pool_sizes: dict[str, int], bank_sizes: dict[str, int],
           bank_slots: dict[str, list[int]] | None = None,
           bank_claimed: dict[str, list[int]] | None = None) -> ClusterDesign:
    """``cluster`` with pools' desired sizes and banks' servers taken from stack config.

    ``squall pool scale`` and the bank's reconcile change these without touching
    the organisation spec; each must still fit the spec's limits. A bank's
    servers are its slots: ``bank_sizes`` gives slots 0..N-1, ``bank_slots``
    names them (the reconcile retires old slots and adds new ones).
    """
    bank_slots, bank_claimed = bank_slots or {}, bank_claimed or {}
    known_pools = {p.spec.name: p for p in cluster.pools}
    known_banks = {b.spec.name: b for b in cluster.banks}
    for kind, sizes, known in (("pool_sizes", pool_sizes, known_pools), ("bank_sizes", bank_sizes, known_banks),
                               ("bank_slots", bank_slots, known_banks), ("bank_claimed", bank_claimed, known_banks)):
        for name in sizes:
            if name not in known:
                raise InvalidInput(f"{kind}: {name!r} is not a {kind.split('_')[0]} of {cluster.spec.org} "
                                   f"(known: {', '.join(known) or 'none'})")
    pools = []
    for pool in cluster.pools:
        size = pool_sizes.get(pool.spec.name, pool.spec.desired)
        if not pool.spec.min <= size <= pool.spec.max:
            raise InvalidInput(f"pool_sizes.{pool.spec.name}: {size} is outside min..max "
                               f"({pool.spec.min}..{pool.spec.max})")
        pools.append(replace(pool, spec=pool.spec.model_copy(update={"desired": size})))
    return replace(cluster, pools=tuple(pools),
                   banks=tuple(_bank_slots(b, bank_sizes, bank_slots, bank_claimed) for b in cluster.banks))


def _bank_slots(bank: BankDesign, sizes: dict[str, int], slots: dict[str, list[int]],
                claimed: dict[str, list[int]]) -> BankDesign:
    name, limit = bank.spec.name, bank.spec.max_size
    if name in sizes:
        if not 0 <= sizes[name] <= limit:
            raise InvalidInput(f"bank_sizes.{name}: {sizes[name]} is outside 0..max_size ({limit})")
        bank = replace(bank, spec=bank.spec.model_copy(update={"idle_target": sizes[name]}),
                       slots=tuple(range(sizes[name])))
    if name in slots:
        chosen = slots[name]
        if len(set(chosen)) != len(chosen) or any(s < 0 for s in chosen) or len(chosen) > limit:
            raise InvalidInput(f"bank_slots.{name}: {len(chosen)} distinct non-negative slots at most "
                               f"(max_size {limit}), got {chosen}")
        bank = replace(bank, slots=tuple(sorted(chosen)))
    taken = tuple(sorted(claimed.get(name, [])))
    if not set(taken) <= set(bank.slots):
        raise InvalidInput(f"bank_claimed.{name}: slots {sorted(set(taken) - set(bank.slots))} are not in the bank")
    return replace(bank, claimed=taken)


def k8s_labels(tags: dict[str, str]) -> dict[str, str]:
    """Owner tags as Kubernetes labels (``squall:org`` → ``squall.io/org``; colons are not allowed)."""
    labels = {}
    for key, value in tags.items():
        if key == "managed-by":
            labels["app.kubernetes.io/managed-by"] = value
        else:
            labels[key.replace("squall:", "squall.io/")] = value
    return labels


def fsx_capacity_gb(size_gb: int) -> int:
    """FSx for Lustre (SCRATCH_2) sizes: 1,200 GB or a multiple of 2,400 GB, rounded up."""
    return 1200 if size_gb <= 1200 else math.ceil(size_gb / 2400) * 2400

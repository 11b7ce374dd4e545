"""Security rules as plain functions over a resource graph.

A graph is the list of custom resources a program declares, with their input
properties in Pulumi's wire form (camelCase keys). The offline tests capture it
under Pulumi's mocks; ``squall.programs.policy`` hands the very same functions
the resources of a real ``pulumi preview``/``up`` (CrossGuard). Each rule yields
``Violation``s naming the resource and what is wrong.

Which machines may face the internet is decided by the ``squall:role`` tag the
programs put on machines and firewall rules (OpenStack rules cannot be tagged:
their description starts with ``[role]``). Only ``head`` may take SSH from
outside the private ranges and reach out freely; anything without a role is
treated as a compute node.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from squall.errors import InvalidInput
from squall.programs.cloud_init import check_no_secrets

OWNER_KEYS = ("managed-by", "squall:org", "squall:project", "squall:cluster")
HEAD = "head"
# Private means these ranges only (RFC 1918, shared address space, IPv6 unique-local): Python's
# ``is_private`` also counts the documentation ranges, which stand for real public addresses here.
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in
                       ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
# Resources the providers give no tags, labels or metadata to.
UNTAGGABLE = frozenset({
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/route:Route",
    "aws:efs/mountTarget:MountTarget",
    "openstack:networking/routerInterface:RouterInterface",
    "openstack:networking/secGroupRule:SecGroupRule",
    "openstack:networking/floatingIpAssociate:FloatingIpAssociate",
    "openstack:compute/keypair:Keypair",
    "openstack:compute/serverGroup:ServerGroup",
    "openstack:sharedfilesystem/shareNetwork:ShareNetwork",
    "openstack:sharedfilesystem/shareAccess:ShareAccess",
})
WORKLOADS = {  # Kubernetes kinds and where their pod spec sits
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
K8S_JOB = "kubernetes:batch/v1:Job"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@dataclass(frozen=True)
class Resource:
    type: str  # e.g. "aws:ec2/instance:Instance"
    name: str
    props: Mapping[str, Any]
    urn: str = ""


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.resource}: {self.message}"


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[Sequence[Resource]], Iterator[Violation]]


# --- reading resources ---------------------------------------------------------------------------

def owner_tags(resource: Resource) -> dict[str, str] | None:
    """The resource's tags/labels/metadata as ``squall:``-style keys; None when it has none at all."""
    props = resource.props
    if resource.type.startswith("kubernetes:"):
        labels = (props.get("metadata") or {}).get("labels")
        if labels is None:
            return None
        return {("managed-by" if k == "app.kubernetes.io/managed-by" else k.replace("squall.io/", "squall:")): v
                for k, v in labels.items()}
    tags = props.get("tags")
    if isinstance(tags, list):  # AWS Auto Scaling (dicts) or OpenStack networking ("key=value" strings)
        pairs = [(t.get("key"), t.get("value")) if isinstance(t, dict) else str(t).partition("=")[::2] for t in tags]
        return {str(k): str(v) for k, v in pairs}
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(props.get("metadata"), dict):
        return {str(k): str(v) for k, v in props["metadata"].items()}
    return None


def role_of(resource: Resource) -> str:
    tags = owner_tags(resource) or {}
    if "squall:role" in tags:
        return tags["squall:role"]
    match = re.match(r"^\[([a-z]+)\]", str(resource.props.get("description") or ""))
    return match.group(1) if match else "compute"


def _open(cidr: object) -> bool:
    return cidr in ("0.0.0.0/0", "::/0")


def _public(cidr: object) -> bool:
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return True  # unparseable: treat as the worst case
    return not any(network.version == private.version and network.subnet_of(private)  # type: ignore[arg-type]
                   for private in PRIVATE_RANGES)


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() == "true"


def _firewall_rules(resource: Resource) -> Iterator[tuple[str, list[str], tuple[float, float] | None, bool]]:
    """(direction, remote CIDRs, port range or None for all, refers to a group) for every rule a resource holds."""
    props, kind = resource.props, resource.type
    if kind == "aws:ec2/securityGroup:SecurityGroup":
        for direction in ("ingress", "egress"):
            for entry in props.get(direction) or []:
                cidrs = list(entry.get("cidrBlocks") or []) + list(entry.get("ipv6CidrBlocks") or [])
                yield direction, cidrs, _ports(entry), bool(entry.get("securityGroups") or entry.get("self"))
    elif kind in ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"):
        direction = "ingress" if "Ingress" in kind else "egress"
        cidrs = [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c]
        ports = None if str(props.get("ipProtocol")) == "-1" else _ports(props)
        yield direction, cidrs, ports, bool(props.get("referencedSecurityGroupId") or props.get("prefixListId"))
    elif kind == "aws:ec2/securityGroupRule:SecurityGroupRule":
        cidrs = list(props.get("cidrBlocks") or []) + list(props.get("ipv6CidrBlocks") or [])
        group = bool(props.get("sourceSecurityGroupId") or props.get("self"))
        yield str(props.get("type")), cidrs, _ports(props), group
    elif kind == "openstack:networking/secGroupRule:SecGroupRule":
        group = bool(props.get("remoteGroupId") or props.get("remoteAddressGroupId"))
        prefix = props.get("remoteIpPrefix")
        cidrs = [prefix] if prefix else ([] if group else ["0.0.0.0/0"])  # no remote at all means anywhere
        low, high = props.get("portRangeMin"), props.get("portRangeMax")
        ports = (float(low), float(high)) if low is not None and high is not None else None
        yield str(props.get("direction")), cidrs, ports, group


def _ports(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    if str(entry.get("protocol", entry.get("ipProtocol"))) == "-1":
        return None
    low, high = entry.get("fromPort"), entry.get("toPort")
    return (float(low), float(high)) if low is not None and high is not None else None


def user_data_of(resource: Resource) -> str | None:
    props = resource.props
    if resource.type == "aws:ec2/launchTemplate:LaunchTemplate" or "userDataBase64" in props:
        encoded = props.get("userData") or props.get("userDataBase64")
        if not encoded:
            return None
        try:
            return base64.b64decode(str(encoded)).decode(errors="replace")
        except (binascii.Error, ValueError):
            return str(encoded)
    value = props.get("userData")
    return str(value) if value else None


def _path(props: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = props
    for key in keys:
        value = (value or {}).get(key) if isinstance(value, Mapping) else None
    return value


# --- the rules -------------------------------------------------------------------------------------

def no_open_ingress(graph: Sequence[Resource]) -> Iterator[Violation]:
    """No ingress from 0.0.0.0/0 or ::/0 at all; from public ranges only SSH (22) to the head node."""
    for resource in graph:
        for direction, cidrs, ports, _ in _firewall_rules(resource):
            if direction != "ingress":
                continue
            for cidr in cidrs:
                if _open(cidr):
                    yield Violation("no-open-ingress", resource.name, f"ingress from {cidr}")
                elif _public(cidr) and (role_of(resource) != HEAD or ports != (22.0, 22.0)):
                    yield Violation("no-open-ingress", resource.name,
                                    f"ingress from public {cidr} is allowed only as SSH to the head node")


def no_internet_egress(graph: Sequence[Resource]) -> Iterator[Violation]:
    """Job and pool (compute) nodes reach only private ranges or their own groups; OpenStack groups drop
    the default allow-all egress."""
    for resource in graph:
        if role_of(resource) == HEAD:
            continue
        if resource.type == "openstack:networking/secGroup:SecGroup" and not _truthy(
                resource.props.get("deleteDefaultRules")):
            yield Violation("no-internet-egress", resource.name, "keeps OpenStack's default allow-all egress rules")
        if resource.type == "aws:ec2/securityGroup:SecurityGroup" and resource.props.get("egress") is None and \
                resource.props.get("ingress") is not None:
            yield Violation("no-internet-egress", resource.name, "inline rules without egress keep AWS's allow-all")
        for direction, cidrs, _, _ in _firewall_rules(resource):
            for cidr in cidrs:
                if direction == "egress" and _public(cidr):
                    yield Violation("no-internet-egress", resource.name, f"egress to {cidr}")


def no_public_ips_on_compute(graph: Sequence[Resource]) -> Iterator[Violation]:
    """Only the head node may have a public address."""
    for resource in graph:
        props, role = resource.props, role_of(resource)
        if role == HEAD:
            continue
        public = False
        if resource.type == "aws:ec2/instance:Instance":
            public = _truthy(props.get("associatePublicIpAddress"))
        elif resource.type == "aws:ec2/launchTemplate:LaunchTemplate":
            public = any(_truthy(n.get("associatePublicIpAddress")) for n in props.get("networkInterfaces") or [])
        elif resource.type == "aws:ec2/subnet:Subnet":
            public = _truthy(props.get("mapPublicIpOnLaunch"))
        elif resource.type == "aws:ec2/eip:Eip":
            public = bool(props.get("instance") or props.get("networkInterface"))
        elif resource.type == "openstack:networking/floatingIp:FloatingIp":
            public = True
        elif resource.type == "openstack:compute/floatingIpAssociate:FloatingIpAssociate":
            public = True
        if public:
            yield Violation("no-public-ips-on-compute", resource.name, f"a public address on a {role} resource")


def volumes_encrypted(graph: Sequence[Resource]) -> Iterator[Violation]:
    """Root and data volumes encrypted (OpenStack: a named volume type, which the spec says is encrypted)."""
    for resource in graph:
        props, kind = resource.props, resource.type
        unencrypted: list[str] = []
        if kind == "aws:ec2/instance:Instance":
            if not _truthy((props.get("rootBlockDevice") or {}).get("encrypted")):
                unencrypted.append("root volume")
            unencrypted += [f"volume {d.get('deviceName')}" for d in props.get("ebsBlockDevices") or []
                            if not _truthy(d.get("encrypted"))]
        elif kind == "aws:ec2/launchTemplate:LaunchTemplate":
            mappings = props.get("blockDeviceMappings") or []
            if not mappings:
                unencrypted.append("the image's default root volume")
            unencrypted += [f"volume {m.get('deviceName')}" for m in mappings
                            if "ebs" in m and not _truthy((m.get("ebs") or {}).get("encrypted"))]
        elif kind in ("aws:ebs/volume:Volume", "aws:efs/fileSystem:FileSystem"):
            if not _truthy(props.get("encrypted")):
                unencrypted.append("volume")
        elif kind == "openstack:compute/instance:Instance":
            devices = props.get("blockDevices") or []
            boot = [d for d in devices if float(d.get("bootIndex", -1)) == 0 and d.get("destinationType") == "volume"]
            if not boot or not all(d.get("volumeType") for d in boot):
                unencrypted.append("root disk (boot from a volume of the encrypted type)")
        elif kind == "openstack:blockstorage/volume:Volume" and not props.get("volumeType"):
            unencrypted.append("volume (no encrypted volume type)")
        for what in unencrypted:
            yield Violation("volumes-encrypted", resource.name, f"{what} is not encrypted")


def owner_tags_present(graph: Sequence[Resource]) -> Iterator[Violation]:
    """Owner tags on every taggable resource, and an expiry on everything of a job stack."""
    for resource in graph:
        if resource.type in UNTAGGABLE or resource.type.startswith(("pulumi:", "squall:")):
            continue
        tags = owner_tags(resource)
        if tags is None:
            yield Violation("owner-tags", resource.name, "no tags")
            continue
        missing = [key for key in OWNER_KEYS if not tags.get(key)]
        if tags.get("managed-by", "squall") != "squall":
            missing.append("managed-by=squall")
        if missing:
            yield Violation("owner-tags", resource.name, f"missing {', '.join(missing)}")
        if "squall:job" in tags and not str(tags.get("squall:expires", "")).isdigit():
            yield Violation("owner-tags", resource.name, "a job stack resource without squall:expires")


def no_secrets_in_user_data(graph: Sequence[Resource]) -> Iterator[Violation]:
    for resource in graph:
        text = user_data_of(resource)
        if text is None:
            continue
        try:
            check_no_secrets(text)
        except InvalidInput as exc:
            yield Violation("no-secrets-in-user-data", resource.name, exc.message)


# Provider limits on user-data: EC2 takes 16 KB before base64 (instances and launch templates alike);
# Nova takes 65535 bytes once base64-encoded.
USER_DATA_LIMITS = {"aws": (16 * 1024, False), "openstack": (65535, True)}


def user_data_size(text: str, cloud: str) -> tuple[int, int]:
    """(bytes as the provider counts them, its limit) for user-data on ``cloud``."""
    limit, encoded = USER_DATA_LIMITS[cloud]
    raw = text.encode()
    return (len(base64.b64encode(raw)) if encoded else len(raw)), limit


def user_data_within_limits(graph: Sequence[Resource]) -> Iterator[Violation]:
    for resource in graph:
        text = user_data_of(resource)
        cloud = resource.type.split(":", 1)[0]
        if text is None or cloud not in USER_DATA_LIMITS:
            continue
        size, limit = user_data_size(text, cloud)
        if size > limit:
            yield Violation("user-data-size", resource.name,
                            f"user-data is {size} bytes; {cloud} accepts at most {limit}")


def warm_pool_within_group(graph: Sequence[Resource]) -> Iterator[Violation]:
    """AWS refuses a warm pool whose min size exceeds its max prepared capacity."""
    for resource in graph:
        pool = resource.props.get("warmPool") if resource.type == "aws:autoscaling/group:Group" else None
        if not isinstance(pool, Mapping) or pool.get("maxGroupPreparedCapacity") is None:
            continue
        if float(pool.get("minSize") or 0) > float(pool["maxGroupPreparedCapacity"]):
            yield Violation("warm-pool-size", resource.name, "warm pool minSize exceeds maxGroupPreparedCapacity")


def k8s_no_privileged(graph: Sequence[Resource]) -> Iterator[Violation]:
    for resource in graph:
        spec = _path(resource.props, WORKLOADS.get(resource.type, ()))
        if resource.type not in WORKLOADS or not isinstance(spec, Mapping):
            continue
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if _truthy(spec.get(host)):
                yield Violation("k8s-no-privileged", resource.name, f"{host} is set")
        for container in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
            context = container.get("securityContext") or {}
            if _truthy(context.get("privileged")) or _truthy(context.get("allowPrivilegeEscalation", True)):
                yield Violation("k8s-no-privileged", resource.name,
                                f"container {container.get('name')} is privileged or may escalate")


def k8s_egress_denied(graph: Sequence[Resource]) -> Iterator[Violation]:
    """Every Job's pods are selected by a NetworkPolicy whose egress stays within selected pods."""
    policies = [r for r in graph if r.type == NETWORK_POLICY]
    for job in (r for r in graph if r.type == K8S_JOB):
        namespace = _path(job.props, ("metadata", "namespace"))
        labels = _path(job.props, ("spec", "template", "metadata", "labels")) or {}
        if not any(_denies_egress(p, namespace, labels) for p in policies):
            yield Violation("k8s-egress-denied", job.name, "no NetworkPolicy limits this job's egress to the job")


def _denies_egress(policy: Resource, namespace: object, labels: Mapping[str, str]) -> bool:
    if _path(policy.props, ("metadata", "namespace")) != namespace:
        return False
    spec = policy.props.get("spec") or {}
    selector = (spec.get("podSelector") or {}).get("matchLabels") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        return False
    if "Egress" not in (spec.get("policyTypes") or []):
        return False
    peers = [peer for rule in spec.get("egress") or [] for peer in rule.get("to") or [None]]
    return all(peer is not None and set(peer) == {"podSelector"} for peer in peers)


RULES: tuple[Rule, ...] = (
    Rule("no-open-ingress", "No 0.0.0.0/0 or ::/0 ingress; only SSH to the head node from configured CIDRs",
         no_open_ingress),
    Rule("no-internet-egress", "No internet egress from job or pool nodes", no_internet_egress),
    Rule("no-public-ips-on-compute", "No public IPs on compute nodes", no_public_ips_on_compute),
    Rule("volumes-encrypted", "Root and data volumes encrypted", volumes_encrypted),
    Rule("owner-tags", "Owner tags or labels on every taggable resource; an expiry on job stacks",
         owner_tags_present),
    Rule("no-secrets-in-user-data", "Nothing credential-like in user-data", no_secrets_in_user_data),
    Rule("user-data-size", "User-data within the provider's limit (16 KB on AWS, 65535 base64 bytes on OpenStack)",
         user_data_within_limits),
    Rule("warm-pool-size", "An AWS warm pool's min size within its max prepared capacity", warm_pool_within_group),
    Rule("k8s-no-privileged", "No privileged containers on Kubernetes", k8s_no_privileged),
    Rule("k8s-egress-denied", "An egress-deny NetworkPolicy for every Kubernetes job", k8s_egress_denied),
)


def check(graph: Sequence[Resource]) -> list[Violation]:
    """Every violation of every rule."""
    return [violation for rule in RULES for violation in rule.check(graph)]

"""Site inventories (HPC centres, cloud head nodes, plain SSH machines): Ansible YAML, layered
common -> site, validated by Squall.

A site folder holds ``hosts.yml`` (for ``hpc`` and ``cloud`` sites one host in
the ``login`` group; for ``ssh`` sites one or more in the ``nodes`` group; each
with its connection variables, which group_vars may give for all) and
``group_vars/all.yml`` (Squall's ``squall_*`` site variables). A sibling ``common/group_vars/all.yml`` is the layer underneath.
The same folders are handed to Ansible as they are (``-i common -i site``).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Annotated, Callable, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      model_validator)

from squall.errors import InvalidInput
from squall.hops import Hop
from squall.money.amounts import decimal
from squall.money.slurm_billing import parse_weights
from squall.project import project_dir
from squall.runtime import scheduler_names
from squall.slurm_options import SetupLine, SiteSlurm
from squall.spec import parse_walltime
from squall.validation import StrictModel, describe_errors

# Role tunables (documented in each role's meta/argument_specs.yml) may also be set per site.
ROLE_PREFIXES = ("squall_site_check_", "squall_runtime_", "squall_health_", "squall_unenrol_")
SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


def _absolute(value: str) -> str:
    if not PurePosixPath(value).is_absolute() or ".." in PurePosixPath(value).parts:
        raise ValueError(f"{value!r} must be an absolute path without '..'")
    return value


def _walltime(value: str) -> str:
    parse_walltime(value)
    return value


def _weights(value: str) -> str:
    parse_weights(value)
    return value


def _date(value: str) -> str:
    date.fromisoformat(value)
    return value


def _probe(value: str) -> str:
    if value and not re.match(r"^[A-Za-z0-9.-]+:\d{1,5}$", value):
        raise ValueError(f"{value!r} is not host:port")
    return value


def _decimal(value: object) -> object:
    """YAML numbers become Decimals through their text (0.1 stays 0.1); anything else is left to fail."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return decimal(value)
    return value


Amount = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0)]


class Price(StrictModel):
    """A fixed charge per job plus rates per task-hour ("A·x + B"), in the site's ``squall_pricing`` currency."""

    per_job: Amount
    per_core_hour: Amount
    per_gpu_hour: Amount = Decimal(0)
    per_gb_hour: Amount = Decimal(0)  # of memory


class SlurmBillingPricing(StrictModel):
    """The centre bills Slurm's ``billing`` TRES: its TRESBillingWeights per partition, as in slurm.conf."""

    per_billing_hour: Amount
    per_job: Amount = Decimal(0)
    priority_flags: list[Literal["MAX_TRES"]] = Field(default_factory=list)
    weights: dict[str, Annotated[str, AfterValidator(_weights)]]


class Pricing(StrictModel):
    """Where the site's prices come from. Without it the site is unpriced (shown so, never as 0)."""

    currency: Annotated[str, Field(pattern=r"^([A-Z]{3}|credits)$")]
    source: str = Field(min_length=1)
    as_of: Annotated[str, AfterValidator(_date)]
    rates: Price | None = None  # for every partition without its own price, and for ssh sites
    slurm_billing: SlurmBillingPricing | None = None


class Energy(StrictModel):
    """What the site's machines draw and how clean its grid is (Green Algorithms; defaults in squall.money.energy)."""

    watts_per_core: Amount | None = None
    watts_per_gpu: Amount | None = None
    watts_per_gb: Amount | None = None
    pue: Annotated[Decimal, BeforeValidator(_decimal), Field(ge=1)] | None = None
    grid_gco2_per_kwh: Amount | None = None
    source: str = Field(min_length=1)


class Partition(StrictModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    max_walltime: Annotated[str, AfterValidator(_walltime)]
    max_cpus_per_task: int = Field(ge=1)
    gpus_per_node: int = Field(0, ge=0)
    max_nodes: int = Field(1, ge=1)  # nodes one task (one array element) may span in this partition
    price: Price | None = None  # in squall_pricing's currency; else squall_pricing.rates
    setup: list[SetupLine] = Field(default_factory=list, max_length=32)  # after the site's, in the batch script


class JumpHost(StrictModel):
    """A bastion in front of the login node: Squall's SSH (and Ansible's) reaches the login node through it."""

    host: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    private_key_file: str = Field(min_length=1)

    @property
    def hop(self) -> Hop:
        return Hop(self.host, self.port, self.user, Path(os.path.expanduser(self.private_key_file)))


def _scheduler(name: str) -> str:
    """``none``, or a batch scheduler the runtime ships a module for (``squall/runtime/schedulers/``)."""
    known = scheduler_names()
    if name != "none" and name not in known:
        raise ValueError(f"{name!r} is not a scheduler Squall knows (known: {', '.join(['none', *known])})")
    return name


class SiteVars(BaseModel):
    """Squall's variables of one site (``squall_*``); other keys are Ansible's.

    A ``cloud`` site is an organisation's head node (the ``login`` host, a jump
    host only): each job gets an ephemeral job stack of ``squall_org_stack``
    whose nodes run its tasks without a scheduler (``squall_scheduler: none``),
    reached through the head. An ``ssh`` site is a group of plain machines with no scheduler
    (``squall_scheduler: none``, no partitions: each host's CPUs and memory
    are what it reports)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    squall_kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]  # a registered kind's (its own rules)
    squall_org_stack: Annotated[str, Field(pattern=r"^([a-z0-9][a-z0-9-]*\.(org|env)\.[A-Za-z0-9_-]+)?$")] = ""
    squall_scheduler: Annotated[str, AfterValidator(_scheduler)]  # "none", or a module shipped with the runtime
    squall_work_root: Annotated[str, AfterValidator(_absolute)]
    squall_partitions: list[Partition] = Field(default_factory=list)
    squall_gpu_partitions: list[str] = Field(default_factory=list)
    squall_container_runtimes: list[Literal["apptainer", "singularity", "podman", "docker"]] = Field(
        default_factory=list
    )
    # how a Slurm site starts a task's MPI ranks (each word checked; the payload's words follow)
    squall_mpi_launcher: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_./=:,+-]{1,128}$")]] = Field(
        default_factory=lambda: ["srun", "--mpi=pmix"], min_length=1, max_length=16)
    # a containers.conf for podman on the site's hosts, where its defaults fail (podman inside a container)
    squall_containers_conf: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9._-]+)*$")] = ""
    squall_max_concurrent_jobs: int = Field(20, ge=1)
    squall_min_free_gb: float = Field(1, ge=0)
    squall_min_free_inodes: int = Field(10000, ge=0)
    squall_network_probe: Annotated[str, AfterValidator(_probe)] = ""
    squall_remote_path: str = ""
    squall_jump_host: JumpHost | None = None
    squall_slurm: SiteSlurm | None = None  # account, qos, ... set-up lines and kept variables for every job
    squall_pricing: Pricing | None = None
    squall_energy: Energy | None = None
    squall_boot_timeout: float = Field(600, gt=0, le=7200)  # cloud: seconds for a job's nodes to answer SSH
    # cloud: run each job on a VM claimed from this bank of the organisation instead of a job stack
    squall_bank: Annotated[str, Field(pattern=r"^([a-z0-9][a-z0-9-]{0,62})?$")] = ""
    # cloud: the account and work root on machines Squall did not make for the job (bank VMs); a job stack
    # says its own in its outputs
    squall_node_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = "squall"
    squall_node_work_root: Annotated[str, AfterValidator(_absolute)] = "/home/squall/work"

    @model_validator(mode="after")
    def _rules_of_the_kind(self, info: ValidationInfo) -> "SiteVars":
        """Each kind's own rules (``InventoryRules.check``, in its kind file), given in the validation's
        context by whoever reads the inventory."""
        kinds: dict[str, InventoryRules] = (info.context or {}).get("kinds", {})
        if self.squall_kind not in kinds:
            raise ValueError(f"squall_kind: {self.squall_kind!r} is not a kind of site this version reads from an "
                             f"inventory ({', '.join(sorted(kinds))})")
        kinds[self.squall_kind].check(self)
        return self

    @model_validator(mode="after")
    def _prices_have_a_currency(self) -> "SiteVars":
        pricing = self.squall_pricing
        for index, partition in enumerate(self.squall_partitions):
            if partition.price is not None and pricing is None:
                raise ValueError(f"squall_partitions[{index}].price: give squall_pricing (currency, source, as_of) "
                                 "for the site's prices")
        if pricing and pricing.slurm_billing:
            names = {p.name for p in self.squall_partitions}
            unknown = sorted(set(pricing.slurm_billing.weights) - names)
            if unknown:
                raise ValueError(f"squall_pricing.slurm_billing.weights: {', '.join(unknown)} not in squall_partitions")
        return self

    @model_validator(mode="after")
    def _gpu_partitions_exist(self) -> "SiteVars":
        names = {p.name for p in self.squall_partitions}
        for index, name in enumerate(self.squall_gpu_partitions):
            if name not in names:
                raise ValueError(f"squall_gpu_partitions[{index}]: {name!r} is not in squall_partitions")
        return self


@dataclass(frozen=True)
class InventoryRules:
    """What a kind whose sites are described by an inventory says of it: the Ansible group of its hosts, and
    its own rules on the site's variables (``check`` raises ``ValueError`` naming the field)."""

    check: Callable[[SiteVars], None]
    host_group: str = "login"


def no_scheduler(site_vars: SiteVars, kind: str) -> None:
    """The rules of a kind whose machines run tasks without a scheduler (``ssh``, ``cloud``)."""
    article = "an" if kind[0] in "aeiou" else "a"
    if site_vars.squall_scheduler != "none":
        raise ValueError(f"squall_scheduler: {article} {kind} site has no scheduler (squall_scheduler: none)")
    if site_vars.squall_partitions:
        raise ValueError(f"squall_partitions: {article} {kind} site has no partitions (they are Slurm's)")


def no_organisation(site_vars: SiteVars) -> None:
    """The rules of a kind that makes nothing in a cloud (``hpc``, ``ssh``)."""
    if site_vars.squall_org_stack:
        raise ValueError("squall_org_stack: a cloud site names its organisation's stack (<org>.org.<name>), "
                         "and only a cloud site does")
    if site_vars.squall_bank:
        raise ValueError("squall_bank: only a cloud site runs its jobs on bank VMs")


class LoginHost(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    ansible_host: str = Field(min_length=1)
    ansible_port: int = Field(22, ge=1, le=65535)
    ansible_user: str = Field(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    ansible_ssh_private_key_file: str = Field(min_length=1)


class NodeHost(LoginHost):
    """A machine of an ``ssh`` site: what it may be given, when less than (or not) what it reports."""

    squall_cpus: int | None = Field(None, ge=1)
    squall_memory_mb: int | None = Field(None, ge=1)
    squall_gpus: int | None = Field(None, ge=0)


NODE_KEYS = frozenset(NodeHost.model_fields) - frozenset(LoginHost.model_fields)


@dataclass(frozen=True)
class SiteInventory:
    name: str
    folder: Path
    layers: tuple[Path, ...]  # inventory sources for Ansible, lowest first
    hosts: tuple[tuple[str, LoginHost], ...]  # (inventory name, connection), the login node first
    vars: SiteVars

    @property
    def host_name(self) -> str:
        return self.hosts[0][0]

    @property
    def login(self) -> LoginHost:
        return self.hosts[0][1]

    @property
    def key_path(self) -> Path:
        return self.key_of(self.login)

    @staticmethod
    def key_of(host: LoginHost) -> Path:
        return Path(os.path.expanduser(host.ansible_ssh_private_key_file))

    def summary(self) -> dict:
        return {
            "site": self.name,
            "inventory": str(self.folder),
            "kind": self.vars.squall_kind,
            "scheduler": self.vars.squall_scheduler,
            "login": f"{self.login.ansible_user}@{self.login.ansible_host}:{self.login.ansible_port}",
            "hosts": {name: f"{h.ansible_user}@{h.ansible_host}:{h.ansible_port}" for name, h in self.hosts},
            "jump_host": str(self.vars.squall_jump_host.hop) if self.vars.squall_jump_host else None,
            "key": str(self.key_path),
            "work_root": self.vars.squall_work_root,
            "partitions": [p.model_dump() for p in self.vars.squall_partitions],
            "gpu_partitions": self.vars.squall_gpu_partitions,
            "container_runtimes": self.vars.squall_container_runtimes,
            "max_concurrent_jobs": self.vars.squall_max_concurrent_jobs,
            "pricing": self.vars.squall_pricing.model_dump(mode="json") if self.vars.squall_pricing else None,
        }


def load_inventory(name: str, folder: Path, kinds: dict[str, InventoryRules]) -> SiteInventory:
    """Read and validate a site folder against the rules of the ``kinds`` that read inventories (the
    registered ones: ``squall.sites.inventories``); ``InvalidInput`` names the file and field."""
    if not SITE_NAME.match(name):
        raise InvalidInput(f"site name {name!r}: use lowercase letters, digits and '-'")
    folder = folder.resolve()
    hosts_file = folder / "hosts.yml"
    if not hosts_file.is_file():
        raise InvalidInput(f"inventory {folder}: no hosts.yml", hint="copy inventories/example-hpc as a start")
    layers = (_common_layer(folder), folder)
    merged: dict = {}
    for layer in layers:
        merged.update(_read_mapping(layer / "group_vars" / "all.yml"))
    rules = kinds.get(merged.get("squall_kind"))  # type: ignore[arg-type]
    group = rules.host_group if rules else "login"
    hosts = _group_hosts(hosts_file, group)
    node_keys = NODE_KEYS if group == "nodes" else frozenset()
    _reject_unknown_squall_keys(merged, folder, node_keys)
    for host_name, host_vars in hosts:
        _reject_unknown_squall_keys(host_vars, folder, node_keys, f"all.children.{group}.hosts.{host_name}.",
                                    host_level=group == "nodes")
    model = NodeHost if group == "nodes" else LoginHost
    try:
        site_vars = SiteVars.model_validate({**merged, **hosts[0][1]}, context={"kinds": kinds})
    except ValidationError as exc:
        raise InvalidInput(f"inventory {folder}: invalid\n  " + "\n  ".join(describe_errors(exc, SiteVars))) from None
    connections = []
    for host_name, host_vars in hosts:
        try:
            connections.append((host_name, model.model_validate({**merged, **host_vars})))
        except ValidationError as exc:
            where = f"all.children.{group}.hosts.{host_name}: " if group == "nodes" else ""
            raise InvalidInput(f"inventory {folder}: invalid\n  " + "\n  ".join(
                where + line for line in describe_errors(exc, model))) from None
    _reject_duplicate_hosts(connections, hosts_file, group)
    return SiteInventory(name, folder, layers, tuple(connections), site_vars)


def _common_layer(folder: Path) -> Path:
    """The defaults under a site: its sibling ``common/``, else the project's own.

    The same layer goes to Ansible, so a site folder copied anywhere gives the
    roles every variable Squall assumed when it validated the site.
    """
    sibling = folder.parent / "common"
    if (sibling / "group_vars").is_dir():
        return sibling
    return project_dir() / "inventories" / "common"


def _read_mapping(path: Path) -> dict:
    """A YAML file whose top level is a mapping with string keys; ``InvalidInput`` naming the file if not."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a text file: {exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read: {exc.strerror}") from None
    return _mapping(data, path, "(top level)")


def _mapping(value: object, path: Path, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{path}: {field} must be a mapping, not a {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            where = "" if field == "(top level)" else f"{field}."
            raise InvalidInput(f"{path}: {where}{key!r}: keys must be names, not a {type(key).__name__}")
    return value


def _group_hosts(hosts_file: Path, group: str) -> list[tuple[str, dict]]:
    """The hosts of ``group`` (``login``: exactly one; ``nodes``: one or more) with their own variables."""
    data = _read_mapping(hosts_file)
    field, node = "all", data.get("all")
    for child in ("children", group, "hosts"):
        node = _mapping(node, hosts_file, field).get(child)
        field += f".{child}"
    hosts = _mapping(node, hosts_file, field)
    if group == "login" and len(hosts) != 1:
        raise InvalidInput(f"{hosts_file}: all.children.login.hosts must hold exactly one login host")
    if not hosts:
        raise InvalidInput(f"{hosts_file}: all.children.{group}.hosts must hold at least one host")
    return [(str(name), dict(_mapping(host_vars, hosts_file, f"{field}.{name}"))) for name, host_vars in hosts.items()]


def _reject_duplicate_hosts(hosts: list[tuple[str, "LoginHost"]], hosts_file: Path, group: str) -> None:
    seen: dict[tuple[str, int], str] = {}
    for name, host in hosts:
        address = (host.ansible_host, host.ansible_port)
        if address in seen:
            raise InvalidInput(f"{hosts_file}: all.children.{group}.hosts.{name}: the same machine as "
                               f"{seen[address]} ({host.ansible_host}:{host.ansible_port})",
                               hint="list each machine once")
        seen[address] = name


def _reject_unknown_squall_keys(variables: dict, folder: Path, node_keys: frozenset[str], where: str = "",
                                host_level: bool = False) -> None:
    """Every ``squall_*`` key is one Squall knows; a machine of an ssh site sets only its own (CPUs...)."""
    known = set(node_keys) if host_level else set(SiteVars.model_fields) | node_keys
    for key in variables:
        if key.startswith("squall_") and key not in known and not key.startswith(ROLE_PREFIXES):
            if host_level and key in SiteVars.model_fields:
                raise InvalidInput(f"inventory {folder}: {where}{key}: a site variable, not a machine's",
                                   hint="set it in group_vars/all.yml")
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidInput(f"inventory {folder}: {where}{key}: unknown Squall variable{hint}")


def find_inventory(name: str, search: list[Path]) -> Path | None:
    for root in search:
        candidate = root / name
        if (candidate / "hosts.yml").is_file():
            return candidate
    return None

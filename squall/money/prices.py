"""Price models: what a job costs at a site, from the site's own published rates.

Every model carries its currency, where its numbers come from and when they were
taken. A site without one is *unpriced* (``None``), which is shown as such and
never ranked as cheapest — never a silent zero. The model a job was admitted
with is stored with the job (``describe``), so the job is settled with the
rates it was quoted, whatever the inventory says later.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from squall.money.amounts import ANY, Money
from squall.money.slurm_billing import TresRequest, billing, parse_weights

MB_PER_GB = Decimal(1024)
GB = Decimal(1024 ** 3)
HOURS_PER_WEEK = Decimal(168)


@dataclass(frozen=True)
class TaskShape:
    """What each task of a job asks for."""

    cpus: int
    memory_mb: int
    gpus: int = 0
    nodes: int = 1

    @property
    def memory_gb(self) -> Decimal:
        return Decimal(self.memory_mb) / MB_PER_GB


@dataclass(frozen=True)
class PriceModel(ABC):
    currency: str
    source: str = ""
    as_of: str = ""

    kind: str = field(init=False, default="")

    @abstractmethod
    def cost(self, shape: TaskShape, task_hours: list[Decimal], bytes_in: int = 0, bytes_out: int = 0) -> Money:
        """The charge for tasks of ``shape`` that ran (or may run) ``task_hours`` each, with ``bytes_in``
        staged to the site and ``bytes_out`` collected from it."""

    def describe(self) -> dict:
        return {key: str(value) if isinstance(value, Decimal) else value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Free(PriceModel):
    """The local site: nothing is bought."""

    currency: str = ANY
    source: str = "this machine"
    kind: str = field(init=False, default="free")

    def cost(self, shape: TaskShape, task_hours: list[Decimal], bytes_in: int = 0, bytes_out: int = 0) -> Money:
        return Money.zero()


@dataclass(frozen=True)
class ResourceRates(PriceModel):
    """A fixed charge per job plus, per task-hour, a rate per core, GPU and GB of memory ("A·x + B")."""

    per_job: Decimal = Decimal(0)
    per_core_hour: Decimal = Decimal(0)
    per_gpu_hour: Decimal = Decimal(0)
    per_gb_hour: Decimal = Decimal(0)
    kind: str = field(init=False, default="rates")

    def cost(self, shape: TaskShape, task_hours: list[Decimal], bytes_in: int = 0, bytes_out: int = 0) -> Money:
        hourly = (shape.cpus * self.per_core_hour + shape.gpus * self.per_gpu_hour
                  + shape.memory_gb * self.per_gb_hour) * shape.nodes
        return Money(self.per_job + hourly * sum(task_hours, Decimal(0)), self.currency)


@dataclass(frozen=True)
class SlurmBilling(PriceModel):
    """The centre bills Slurm's ``billing`` TRES: a rate per billing-unit-hour (plus a fixed charge per job)."""

    weights: str = ""  # the partition's TRESBillingWeights
    max_tres: bool = False  # PriorityFlags=MAX_TRES
    per_billing_hour: Decimal = Decimal(0)
    per_job: Decimal = Decimal(0)
    kind: str = field(init=False, default="slurm-billing")

    def units(self, shape: TaskShape) -> int:
        request = TresRequest(cpus=shape.cpus * shape.nodes, mem_mb=shape.memory_mb * shape.nodes,
                              nodes=shape.nodes, gres=(("gpu", shape.gpus * shape.nodes),) if shape.gpus else ())
        return billing(request, parse_weights(self.weights), self.max_tres)

    def cost(self, shape: TaskShape, task_hours: list[Decimal], bytes_in: int = 0, bytes_out: int = 0) -> Money:
        return Money(self.per_job + self.units(shape) * self.per_billing_hour * sum(task_hours, Decimal(0)),
                     self.currency)


@dataclass(frozen=True)
class NodeRates(PriceModel):
    """A cloud flavour: per node-hour, a spin-up charge per node, storage per GB-week, data per GB."""

    per_node_hour: Decimal = Decimal(0)
    spin_up_per_node: Decimal = Decimal(0)
    storage_per_gb_week: Decimal = Decimal(0)
    data_in_per_gb: Decimal = Decimal(0)
    data_out_per_gb: Decimal = Decimal(0)
    kind: str = field(init=False, default="nodes")

    def cost(self, shape: TaskShape, task_hours: list[Decimal], bytes_in: int = 0, bytes_out: int = 0) -> Money:
        hours = sum(task_hours, Decimal(0))
        gb_in, gb_out = Decimal(bytes_in) / GB, Decimal(bytes_out) / GB
        weeks = max(task_hours, default=Decimal(0)) / HOURS_PER_WEEK  # the job's data lives as long as it runs
        return Money(shape.nodes * len(task_hours) * self.spin_up_per_node + shape.nodes * self.per_node_hour * hours
                     + (gb_in + gb_out) * weeks * self.storage_per_gb_week
                     + gb_in * self.data_in_per_gb + gb_out * self.data_out_per_gb, self.currency)


def from_description(description: dict) -> PriceModel:
    """The model ``describe`` wrote (with a job), rebuilt for its settlement."""
    values = dict(description)
    kind = values.pop("kind")
    model = {"free": Free, "rates": ResourceRates, "slurm-billing": SlurmBilling, "nodes": NodeRates}[kind]
    decimals = {name for name, f in model.__dataclass_fields__.items() if f.type in ("Decimal", Decimal)}
    return model(**{key: Decimal(value) if key in decimals else value for key, value in values.items()})

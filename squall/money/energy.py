"""Energy and emissions of a job, with the Green Algorithms formula.

    energy (kWh) = hours × (cores × W per core × core usage + GPUs × W per GPU × usage
                            + memory GB × W per GB) × PUE / 1000
    emissions (gCO₂e) = energy × grid carbon intensity (gCO₂e/kWh)

Lannelongue, Grealey & Inouye, "Green Algorithms: Quantifying the Carbon
Footprint of Computation", Advanced Science 8 (2021) 2100707,
https://doi.org/10.1002/advs.202100707 — and its calculator's defaults, used
here when a site states nothing: 12 W per core (the calculator's "Any" CPU
TDP per core), 0.3725 W per GB of memory, a data centre PUE of 1.67 (Uptime
Institute's 2019 world average) and 475 gCO₂e/kWh (the world average grid
intensity the calculator uses). A GPU draws 250 W by default (the TDP of an
NVIDIA V100 PCIe or A100 PCIe 40 GB). Each site may state its own (and should: the local grid
is what matters most).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from squall.money.prices import TaskShape

DEFAULTS_SOURCE = ("Green Algorithms calculator defaults (Lannelongue et al. 2021, doi:10.1002/advs.202100707): "
                   "12 W/core, 0.3725 W/GB, PUE 1.67, 475 gCO2e/kWh; 250 W/GPU")


@dataclass(frozen=True)
class EnergyModel:
    watts_per_core: Decimal = Decimal("12")
    watts_per_gpu: Decimal = Decimal("250")
    watts_per_gb: Decimal = Decimal("0.3725")
    pue: Decimal = Decimal("1.67")
    grid_gco2_per_kwh: Decimal = Decimal("475")
    core_usage: Decimal = Decimal("1")  # the share of each core a task keeps busy (1: the bound)
    source: str = DEFAULTS_SOURCE

    def kwh(self, shape: TaskShape, task_hours: list[Decimal]) -> Decimal:
        watts = (shape.cpus * self.watts_per_core * self.core_usage + shape.gpus * self.watts_per_gpu * self.core_usage
                 + shape.memory_gb * self.watts_per_gb) * shape.nodes
        return sum(task_hours, Decimal(0)) * watts * self.pue / 1000

    def gco2e(self, kwh: Decimal) -> Decimal:
        return kwh * self.grid_gco2_per_kwh

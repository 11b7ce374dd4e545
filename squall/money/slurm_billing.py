"""Slurm's own ``billing`` TRES, reproduced: what a centre that bills by ``TRESBillingWeights`` charges.

Slurm weighs each trackable resource a job asks for — CPUs, memory in MB, nodes,
GRES such as ``gres/gpu`` — and sums the products; with ``PriorityFlags=MAX_TRES``
the node-level ones (CPU, memory, node, GRES) count only through the largest of
them, and the rest (licences, burst buffers) are added. The job's ``billing``
is that number truncated to an integer (``scontrol show job`` prints it). A
weight may carry a unit for memory: ``Mem=0.25G`` is 0.25 per GB, so per MB it
is 0.25/1024. See slurm.conf(5), TRESBillingWeights and PriorityFlags.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

NODE_LEVEL = ("cpu", "mem", "node")  # with every gres/*
UNITS_IN_MB = {"M": 1, "G": 1024, "T": 1024 ** 2, "P": 1024 ** 3}
WEIGHT = re.compile(r"^(?P<tres>[A-Za-z]+(?:/[A-Za-z0-9_:.-]+)?)=(?P<value>[0-9]*\.?[0-9]+)(?P<unit>[MGTP])?$")


@dataclass(frozen=True)
class TresRequest:
    """What one Slurm job (one array element) asks for, counted as Slurm counts TRES."""

    cpus: int
    mem_mb: int
    nodes: int = 1
    gres: tuple[tuple[str, int], ...] = ()  # (("gpu", 1),)

    def counts(self) -> dict[str, int]:
        return {"cpu": self.cpus, "mem": self.mem_mb, "node": self.nodes,
                **{f"gres/{name}": count for name, count in self.gres}}


def parse_weights(text: str) -> dict[str, float]:
    """``"CPU=1.0,Mem=0.25G,GRES/gpu=2.0"`` → per-unit weights keyed by TRES (memory per MB); raises
    ``ValueError`` naming the part Slurm would refuse."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = WEIGHT.fullmatch(part)
        if not match:
            raise ValueError(f"{part!r} is not TRES=weight (such as CPU=1.0, Mem=0.25G, GRES/gpu=2.0)")
        tres = match["tres"].lower()
        if tres not in ("cpu", "mem", "node", "energy") and not tres.startswith(("gres/", "license/", "bb/")):
            raise ValueError(f"{part!r}: {match['tres']} is not a TRES Slurm bills")
        if match["unit"] and tres != "mem":
            raise ValueError(f"{part!r}: only memory takes a unit")
        weight = float(match["value"])
        weights[tres] = weight / UNITS_IN_MB[match["unit"]] if match["unit"] else weight
    return weights


def billing(request: TresRequest, weights: dict[str, float], max_tres: bool = False) -> int:
    """Slurm's ``billing`` for ``request``; without weights Slurm bills the CPU count."""
    if not weights:
        return request.cpus
    node_level = 0.0
    other = 0.0
    for tres, count in request.counts().items():
        weighted = weights.get(tres, 0.0) * count
        if max_tres and (tres in NODE_LEVEL or tres.startswith("gres/")):
            node_level = max(node_level, weighted)
        else:
            other += weighted
    return math.floor(node_level + other)


def billing_hours(request: TresRequest, weights: dict[str, float], max_tres: bool, hours: Decimal) -> Decimal:
    return Decimal(billing(request, weights, max_tres)) * hours

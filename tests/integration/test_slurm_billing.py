"""Squall's Slurm billing equals Slurm's own: the test bed's partitions carry TRESBillingWeights, and for many
job shapes (CPUs, memory, GPUs), with and without PriorityFlags=MAX_TRES, the ``billing=`` that
``scontrol show job`` reports for a held job is what Squall computes from the site inventory."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from squall.sites.inventories import load_site_inventory
from squall.money.prices import SlurmBilling, TaskShape
from squall.money.site_prices import price_model

REPO = Path(__file__).resolve().parents[2]


def slurm(testbed, *argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "SLURM_CONF": testbed["slurm_conf"]},
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def slurm_billing(testbed, partition: str, cpus: int, memory_mb: int, gpus: int) -> int:
    gres = [f"--gres=gpu:{gpus}"] if gpus else []
    job = slurm(testbed, "sbatch", "--parsable", "--hold", "-p", partition, "-c", str(cpus), f"--mem={memory_mb}M",
                *gres, "-J", "squall-billing-probe", "--wrap", "true").strip().split(";")[0]
    try:
        shown = slurm(testbed, "scontrol", "show", "job", job)
    finally:
        slurm(testbed, "scancel", job)
    return int(re.search(r"billing=(\d+)", shown).group(1))


@pytest.fixture
def priority_flags(testbed):
    """Set slurm.conf's PriorityFlags for a while (scontrol reconfigure), then put it back."""
    conf = Path(testbed["slurm_conf"])
    original = conf.read_text()

    def use(flags: str | None) -> None:
        conf.write_text(original + (f"PriorityFlags={flags}\n" if flags else ""))
        slurm(testbed, "scontrol", "reconfigure")
    yield use
    conf.write_text(original)
    slurm(testbed, "scontrol", "reconfigure")


def shapes(real_memory: int) -> list[tuple[str, int, int, int]]:
    """Without GPUs, many memories; with the test bed's GPUs (counted by Slurm, no devices), fewer."""
    memories = sorted({100, 500, 1000, 1023, 1024, 1025, 2047, 2048, 3000, 4095, 4096, real_memory // 2,
                       real_memory - 1})
    plain = [(p, c, m, 0) for p, c, m in itertools.product(("debug", "long"), (1, 2), memories)]
    gpu = [(p, c, m, g) for p, c, m, g in itertools.product(("debug", "long"), (1, 2), (500, 4096, real_memory - 1),
                                                              (1, 2))]
    return [shape for shape in plain + gpu if shape[2] <= real_memory]


@pytest.mark.parametrize("flags", [None, "MAX_TRES"])
def test_squall_computes_the_billing_slurm_reports(testbed, priority_flags, flags):
    site = load_site_inventory("testbed", REPO / "inventories" / "testbed").vars
    shown = slurm(testbed, "scontrol", "show", "partition", "-o")
    for partition in site.squall_partitions:  # the inventory states the very weights slurm.conf has
        line = next(row for row in shown.splitlines() if row.startswith(f"PartitionName={partition.name} "))
        assert f"TRESBillingWeights={site.squall_pricing.slurm_billing.weights[partition.name]}" in line
    real_memory = int(re.search(r"RealMemory=(\d+)", slurm(testbed, "scontrol", "show", "node", "localhost"))[1])
    cases = shapes(real_memory)
    assert len(cases) >= 50 and sum(1 for case in cases if case[3]) >= 20
    summed = SlurmBilling(currency="credits", weights=site.squall_pricing.slurm_billing.weights["long"])
    assert any(summed.units(TaskShape(c, m, g)) != replace(summed, max_tres=True).units(TaskShape(c, m, g))
               for p, c, m, g in cases if p == "long")  # the flag matters for these shapes: the test can fail
    priority_flags(flags)
    differ = []
    for partition, cpus, memory, gpus in cases:
        model = price_model(site, next(p for p in site.squall_partitions if p.name == partition))
        assert isinstance(model, SlurmBilling)
        model = replace(model, max_tres=flags == "MAX_TRES")
        ours = model.units(TaskShape(cpus=cpus, memory_mb=memory, gpus=gpus))
        theirs = slurm_billing(testbed, partition, cpus, memory, gpus)
        if ours != theirs:
            differ.append((partition, cpus, memory, gpus, ours, theirs))
    assert not differ, differ

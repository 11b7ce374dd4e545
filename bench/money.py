"""Benchmarks of admission (issue 13): placement decisions and budget holds, each against a baseline measured
in the same run.

- placement: 20 fixture sites (no remote calls) × 10 specs; the time of one ``auto`` decision (estimate every
  site, rank) against the site checks alone. Target: < 50 ms per decision.
- admission: 20 processes creating jobs at once, each job holding a budget in its creating transaction,
  against the same processes creating jobs with no hold. Target: p95 < 20 ms.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class FixtureSite:
    """A site from a table: what estimate() asks of a site, with no remote call."""

    def __init__(self, index: int):
        from squall.money.energy import EnergyModel
        from squall.money.prices import ResourceRates
        from squall.money.quotes import Quote

        self.name = f"site-{index:02d}"
        self.cores = 4 + index % 5 * 4
        price = ResourceRates(currency="EUR", per_job=Decimal("0.05"), per_core_hour=Decimal(index % 7 + 1) / 100)
        self._quote = Quote(price=price if index % 6 else None, energy=EnergyModel(pue=Decimal("1.1") + index % 4),
                            concurrency=self.cores, queue_wait_s=float(index * 37 % 600))

    def check(self, plan) -> None:
        from squall.errors import Refused

        if plan.spec.resources.cpus > self.cores:
            raise Refused(f"resources.cpus: {self.name} has {self.cores} cores")

    def quote(self, plan):
        return self._quote


def placement(runs: int) -> dict:
    from squall.jobs import new_plan
    from squall.money.estimate import estimate
    from squall.placement import STRATEGIES, choose
    from squall.spec import load_spec
    from squall.store import Store

    resolved = load_spec(REPO / "examples" / "wind-stats" / "job.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(Path(scratch) / "home")
        sites = [FixtureSite(i) for i in range(20)]
        plans = []
        for i in range(10):
            spec = resolved.spec.model_copy(update={"split": 1 + i % 4, "resources": resolved.spec.resources.model_copy(
                update={"cpus": 1 + i % 3 * 4})})
            plans.append(new_plan(type(resolved)(spec, resolved.spec_dir, resolved.inputs, resolved.script),
                                  f"bench-{i}", Path(scratch), store.store_id))

        def decisions() -> float:
            started = time.perf_counter()
            for index, plan in enumerate(plans):
                choose([estimate(site, plan, store) for site in sites], STRATEGIES[index % 4])
            return (time.perf_counter() - started) / len(plans)

        def checks() -> float:
            started = time.perf_counter()
            for plan in plans:
                for site in sites:
                    try:
                        site.check(plan)
                    except Exception:  # noqa: BLE001 - a refusal is part of the work measured
                        pass
            return (time.perf_counter() - started) / len(plans)

        decision = statistics.median(decisions() for _ in range(runs))
        baseline = statistics.median(checks() for _ in range(runs))
        store.close()
    return {"placement_per_decision": {"value": round(decision * 1000, 3), "baseline": round(baseline * 1000, 3),
                                       "ratio": round(decision / baseline, 1), "unit": "ms",
                                       "target": "< 50 ms per decision (20 sites)"}}


def _submitter(home: str, index: int, count: int, hold: bool, start: float, out) -> None:
    from squall.money.amounts import Money
    from squall.money.ledger import take_holds
    from squall.store import JobRow, Store

    store = Store(Path(home))
    latencies = []
    time.sleep(max(0.0, start - time.time()))
    for n in range(count):
        job_id = f"{'h' if hold else 'b'}{index:02d}-{n:04d}"
        row = JobRow(id=job_id, name="bench", project="p", site="s", spec={}, spec_dir="/s", results_dir="/r",
                     phase="plan", status="pending", error=None, cancel_requested=False, network_isolated=None,
                     created_at=time.time(), updated_at=time.time(), finished_at=None, org="acme")
        admit = (lambda db, job_id=job_id: take_holds(db, job_id, "acme", "p", "s", Money(Decimal("0.01"), "EUR"))) \
            if hold else None
        started = time.perf_counter()
        store.create_job(row, [[]], admit=admit)
        latencies.append(time.perf_counter() - started)
    store.close()
    out.put(latencies)


def admission(per_process: int) -> dict:
    from squall.money.amounts import Money
    from squall.money.ledger import set_budget
    from squall.store import Store

    context = multiprocessing.get_context("spawn")
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        store = Store(home)
        with store.transaction() as db:
            set_budget(db, "org:acme", Money(Decimal("1000000"), "EUR"))
            set_budget(db, "project:acme/p", Money(Decimal("1000000"), "EUR"))
        store.close()
        for hold in (False, True):
            out = context.Queue()
            start = time.time() + 3
            workers = [context.Process(target=_submitter, args=(str(home), i, per_process, hold, start, out))
                       for i in range(20)]
            for worker in workers:
                worker.start()
            latencies = sorted(x for _ in workers for x in out.get(timeout=300))
            for worker in workers:
                worker.join()
            results[hold] = latencies[int(len(latencies) * 0.95)]
    return {"admission_p95_20_submitters": {"value": round(results[True] * 1000, 2),
                                            "baseline": round(results[False] * 1000, 2),
                                            "ratio": round(results[True] / results[False], 2), "unit": "ms",
                                            "target": "p95 < 20 ms (baseline: the same job writes, no hold)"}}


def money_figures(quick: bool) -> dict:
    return placement(5 if quick else 15) | admission(10 if quick else 30)


if __name__ == "__main__":
    import json

    print(json.dumps(money_figures(quick=True), indent=2))

"""``squall job estimate``: for each site, can it run the job, when would it start, how long, at what cost,
with how much energy and emissions — or why not.

Run time has two figures: the bound (the walltime: what a hold is taken for)
and the likely value, from this store's history of the same job (name and
project): the median wall time per input byte of its succeeded tasks, times
each task's input bytes (a task with no inputs takes the median wall time).
Without history the likely value is the bound, and says so.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from squall.errors import SquallError
from squall.money.amounts import Money
from squall.money.prices import TaskShape
from squall.money.quotes import Quote
from squall.money.site_limits import check_task_fits, task_demand
from squall.job_types import JobPlan
from squall.spec import Resources
from squall.store import Store

SECONDS_PER_HOUR = Decimal(3600)


@dataclass(frozen=True)
class SiteEstimate:
    site: str
    eligible: bool
    reason: str | None = None  # why the site cannot take the job
    quote: Quote | None = None
    bound_s: float = 0.0  # start to end at most: queue + waves × walltime
    likely_s: float = 0.0
    likely_source: str = ""
    cost_max: Money | None = None  # None: unpriced
    cost_likely: Money | None = None
    kwh_likely: Decimal = Decimal(0)
    gco2e_likely: Decimal = Decimal(0)

    @property
    def priced(self) -> bool:
        return self.cost_max is not None

    def to_dict(self) -> dict:
        if not self.eligible:
            return {"site": self.site, "eligible": False, "reason": self.reason}
        quote = self.quote
        assert quote is not None
        return {
            "site": self.site, "eligible": True, "partition": quote.partition,
            "queue_wait_s": round(quote.queue_wait_s), "queue_source": quote.queue_source,
            "run_time_s": {"bound": round(self.bound_s), "likely": round(self.likely_s),
                           "likely_source": self.likely_source},
            "cost": ({"max": self.cost_max.to_json(), "likely": self.cost_likely.to_json(),
                      "price": quote.price.describe() if quote.price else None}
                     if self.cost_max is not None and self.cost_likely is not None else "unpriced"),
            "energy_kwh": str(round(self.kwh_likely, 4)), "emissions_gco2e": str(round(self.gco2e_likely, 1)),
            "energy_source": quote.energy.source,
            "site_limits": {"source": quote.site_limits_source,
                            "limits": [limit.to_dict() for limit in quote.site_limits],
                            "tasks_at_once": quote.concurrency},
        }


def shape_of(res: Resources) -> TaskShape:
    return TaskShape(cpus=res.cpus_per_node, memory_mb=(res.memory_bytes or 0) >> 20, gpus=res.gpus, nodes=res.nodes)


def history_rate(store: Store, name: str, project: str) -> tuple[float | None, float | None, int]:
    """(median seconds per input byte, median seconds of a task, tasks seen) over this job's past successes."""
    rows = store.rows(
        "SELECT t.wall_time, t.inputs FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = ? AND "
        "j.project = ? AND t.status = 'succeeded' AND t.wall_time IS NOT NULL ORDER BY j.created_at DESC LIMIT 500",
        (name, project))
    per_byte, walls = [], []
    for wall, inputs in rows:
        size = sum(entry[1] for entry in json.loads(inputs or "[]"))
        walls.append(wall)
        if size:
            per_byte.append(wall / size)
    return (statistics.median(per_byte) if per_byte else None, statistics.median(walls) if walls else None,
            len(rows))


class Quotable(Protocol):
    """What an estimate asks of a site (``squall.sites.contract.Site`` is one): its name, whether it can run
    the plan, and its quote — money needs nothing else of the sites."""

    name: str

    def check(self, plan: JobPlan) -> None: ...

    def quote(self, plan: JobPlan) -> Quote: ...


def estimate(site: Quotable, plan: JobPlan, store: Store, checked: bool = False) -> SiteEstimate:
    """The estimate for ``plan`` at ``site``; an ineligible site says why (nothing is created either way).
    ``checked``: ``site.check`` has passed already, and a failure to quote is raised, not reported."""
    try:
        if not checked:
            site.check(plan)
        quote = site.quote(plan)
        check_task_fits(site.name, list(quote.site_limits), task_demand(plan.spec.resources))
    except SquallError as exc:
        if checked:
            raise
        return SiteEstimate(site.name, False, reason=str(exc))
    walltime = float(plan.walltime)
    concurrency = quote.concurrency or len(plan.tasks)
    waves = math.ceil(len(plan.tasks) / max(1, concurrency))
    rate, median_wall, seen = history_rate(store, plan.spec.name, plan.spec.project)
    task_bytes = [sum(i.size for i in task.inputs) for task in plan.tasks]
    if rate is not None or median_wall is not None:
        likely = [min(walltime, rate * size if rate is not None and size else median_wall or walltime)
                  for size in task_bytes]
        source = f"history: {seen} succeeded task(s) of {plan.spec.name!r}"
    else:
        likely = [walltime] * len(plan.tasks)
        source = "no history of this job: the walltime bound"
    shape = shape_of(plan.spec.resources)
    hours_bound = [Decimal(walltime) / SECONDS_PER_HOUR] * len(plan.tasks)
    hours_likely = [Decimal(seconds) / SECONDS_PER_HOUR for seconds in likely]
    staged = sum(task_bytes)  # outputs are unknown before the run: what comes back is charged at settlement
    kwh = quote.energy.kwh(shape, hours_likely)
    return SiteEstimate(
        site.name, True, quote=quote,
        bound_s=quote.queue_wait_s + waves * walltime,
        likely_s=quote.queue_wait_s + waves * max(likely, default=0.0),
        likely_source=source,
        cost_max=quote.price.cost(shape, hours_bound, staged) if quote.price else None,
        cost_likely=quote.price.cost(shape, hours_likely, staged) if quote.price else None,
        kwh_likely=kwh, gco2e_likely=quote.energy.gco2e(kwh),
    )

"""The end of a job's money: charge what it used, release the rest of its holds, write its usage record.

Usage is measured, not estimated: each task's wall time × the resources it asked
for, at the price model the job was admitted with (stored with the job), and the
bytes staged. A task that never ran costs nothing; a failed task is charged for
what it ran. Run again, it changes nothing (holds settle once; one record per job).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from decimal import Decimal

from squall.money.accounts import split_price
from squall.money.amounts import Money
from squall.money.energy import EnergyModel
from squall.money.estimate import shape_of
from squall.money.ledger import settle
from squall.money.prices import from_description
from squall.spec import validate_spec
from squall.store import JobRow, Store, TaskRow

SECONDS_PER_HOUR = Decimal(3600)


def outcome_of(job: JobRow) -> str:
    if job.error and "down failed" in job.error:
        return "teardown-failed"
    return job.status


def measured_cost(job: JobRow, tasks: list[TaskRow]) -> tuple[Money | None, Decimal, EnergyModel]:
    """(cost — None when the site was unpriced —, kWh, the energy model) of what the job's tasks ran."""
    admitted = job.estimate or {}
    shape = shape_of(validate_spec(job.spec, source=f"job {job.id}").resources)
    hours = [Decimal(str(t.wall_time)) / SECONDS_PER_HOUR for t in tasks if t.wall_time is not None]
    staged = sum(size for t in tasks for _, size in t.inputs)
    price = admitted.get("price")
    energy = EnergyModel(**{k: Decimal(v) if k != "source" else v for k, v in admitted["energy"].items()}) \
        if admitted.get("energy") else EnergyModel()
    cost = from_description(price).cost(shape, hours, staged) if price else None
    return cost, energy.kwh(shape, hours), energy


def settle_job(store: Store, job_id: str) -> dict | None:
    """Settle ``job_id`` (a finished job) and write its usage record; the record, or None if not finished."""
    job = store.job(job_id)
    if job is None or job.phase != "done":
        return None
    tasks = store.tasks(job_id)
    cost, kwh, energy = measured_cost(job, tasks)
    estimate = (job.estimate or {}).get("site_estimate", {})
    ended = job.finished_at or time.time()
    record = {
        "job": job.id, "name": job.name, "outcome": outcome_of(job), "org": job.org, "project": job.project,
        "user": job.user, "site": job.site, "started_at": job.created_at, "ended_at": ended,
        "duration_s": round(ended - job.created_at, 3),
        "resources": {"tasks": len(tasks), **{k: job.spec.get("resources", {}).get(k) for k in
                                              ("cpus", "memory", "gpus", "walltime")},
                      "task_seconds": round(sum(t.wall_time or 0 for t in tasks), 3),
                      "bytes_staged": sum(size for t in tasks for _, size in t.inputs)},
        "cost": {"estimated_max": estimate.get("cost", {}).get("max") if isinstance(estimate.get("cost"), dict)
                 else None,
                 "estimated_likely": estimate.get("cost", {}).get("likely")
                 if isinstance(estimate.get("cost"), dict) else None,
                 "actual": cost.to_json() if cost is not None else "unpriced"},
        "energy_kwh": str(round(kwh, 6)), "emissions_gco2e": str(round(energy.gco2e(kwh), 3)),
        "intensity_source": energy.source,
    }
    charged = cost or Money.zero()  # unpriced: no budget held anything for it
    split = store.rows("SELECT split FROM price_splits WHERE job_id = ?", (job_id,))
    if split and cost is not None:
        admitted = json.loads(split[0][0])
        ran = any(t.wall_time is not None for t in tasks)  # a service that never ran is not charged
        service = admitted["p_zop"] if ran and admitted["p_zop"]["currency"] else None
        actual = split_price(cost, Money(Decimal(service["amount"]), service["currency"]) if service else None,
                             admitted["tier"], Decimal(admitted["multiplier"]))
        record["price"] = actual.to_dict()
        charged = actual.p_user
    with store.transaction() as db:
        settle(db, job_id, charged)
        db.execute("INSERT INTO usage (job_id, org, project, \"user\", site, outcome, started_at, ended_at, "
                   "record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   (job.id, job.org, job.project, job.user, job.site, record["outcome"], job.created_at, ended,
                    json.dumps(record)))
    return record


def energy_description(energy: EnergyModel) -> dict:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(energy).items()}

"""20 processes submit at once against a budget that holds exactly 7 maximum costs (or a quota of 7 GPUs):
7 are created, 13 refused, and the limit is never exceeded — real processes on one real store, SQLite's or
PostgreSQL's."""

from __future__ import annotations

import multiprocessing
import time
from decimal import Decimal
from pathlib import Path

import pytest

from squall.money.amounts import Money
from squall.money.ledger import budget_state, set_budget, take_holds
from squall.money.quotas import reserve
from squall.store import JobRow, Store

pytestmark = pytest.mark.usefixtures("database")  # on SQLite, and on PostgreSQL (writers on one database)

MAX_COST = Money(Decimal("1.37"), "EUR")


def admit(limit: str, job_id: str):
    """The admission step each submitter runs inside its job's creating transaction."""
    if limit == "budget":
        return lambda db: take_holds(db, job_id, "acme", "wind", "hpc", MAX_COST)
    return lambda db: reserve(db, job_id, ["project:acme/wind"], {"gpus": 1})


def submit(home: str, index: int, start: float, limit: str, results) -> None:
    store = Store(Path(home))
    job_id = f"261201-{index:06x}"
    row = JobRow(id=job_id, name="race", project="wind", site="hpc", spec={}, spec_dir="/s", results_dir="/r",
                 phase="plan", status="pending", error=None, cancel_requested=False, network_isolated=None,
                 created_at=time.time(), updated_at=time.time(), finished_at=None, org="acme")
    time.sleep(max(0.0, start - time.time()))  # all at once
    try:
        store.create_job(row, [[]], admit=admit(limit, job_id))
        results.put(("created", index))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put((type(exc).__name__, str(exc)))
    finally:
        store.close()


def race(home: Path, limit: str) -> list[tuple[str, object]]:
    """20 submitters released at the same moment; each one's outcome."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = time.time() + 3
    workers = [context.Process(target=submit, args=(str(home), i, start, limit, results)) for i in range(20)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds.count("created") == 7 and kinds.count("Refused") == 13, outcomes
    return outcomes


def test_twenty_concurrent_submitters_never_overspend(tmp_path):
    home = tmp_path / "home"
    store = Store(home)
    with store.transaction() as db:
        set_budget(db, "project:acme/wind", MAX_COST * 7)
    outcomes = race(home, "budget")
    assert all("project:acme/wind" in why for kind, why in outcomes if kind == "Refused")
    state = budget_state(store.rows, "project:acme/wind")
    assert state.held == MAX_COST * 7 and state.available.amount == 0
    assert store.rows("SELECT COUNT(*) FROM jobs")[0][0] == 7  # nothing was created for the refused ones
    assert store.rows("SELECT COUNT(*) FROM holds")[0][0] == 7
    store.close()


def test_twenty_concurrent_submitters_never_exceed_a_gpu_quota(tmp_path):
    home = tmp_path / "home"
    store = Store(home)
    with store.transaction() as db:
        db.execute("INSERT INTO quotas (scope, resource, amount) VALUES ('project:acme/wind', 'gpus', 7)")
    race(home, "gpus")
    assert store.rows("SELECT COUNT(*) FROM jobs")[0][0] == 7
    assert store.rows("SELECT SUM(amount) FROM reservations")[0][0] == 7
    store.close()

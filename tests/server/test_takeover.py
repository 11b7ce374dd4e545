"""Which jobs a server takes over: unfinished, and no controller holds the job's lock — on both stores
(file locks in the home; advisory locks in a shared PostgreSQL database, seen from another home)."""

from __future__ import annotations

import time

import pytest

from squall.server.takeover import FIRST_START_GRACE, orphans
from squall.store import JobRow, Store

pytestmark = pytest.mark.usefixtures("database")


def add_job(store: Store, job_id: str, phase: str, status: str, age: float = 0) -> None:
    at = time.time() - age
    store.create_job(JobRow(id=job_id, name="n", project="p", site="hpc", spec={}, spec_dir="/s", results_dir="/r",
                            phase=phase, status=status, error=None, cancel_requested=False, network_isolated=None,
                            created_at=at, updated_at=at, finished_at=None), [[]])


def test_only_unfinished_jobs_without_a_controller_are_orphans(tmp_path, database):
    store = Store(tmp_path / "a")
    add_job(store, "driven", "monitor", "running")
    add_job(store, "lost", "monitor", "running")
    add_job(store, "starting", "plan", "pending")  # its first controller is on its way
    add_job(store, "never-started", "plan", "pending", age=FIRST_START_GRACE + 5)
    add_job(store, "kept", "collect", "incomplete")  # waits for a person's attach
    add_job(store, "done", "done", "succeeded")
    with store.locks.controller("driven"):
        found = orphans(store)
        if database:  # another machine's server sees the same locks through the shared database
            assert orphans(Store(tmp_path / "b")) == found
    assert sorted(found) == ["lost", "never-started"]
    assert "driven" in orphans(store)  # its controller ended: now nobody drives it

from __future__ import annotations

import os
import signal
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from squall.errors import Interrupted
from squall.interrupts import SignalGuard
from squall.store import MIGRATIONS, Store

pytestmark = pytest.mark.usefixtures("database")  # each test on SQLite and on PostgreSQL



def test_fresh_store_is_migrated_and_in_wal_mode(tmp_path):
    store = Store(tmp_path / "h")
    assert store.schema_version == len(MIGRATIONS)
    if store.db.dialect == "sqlite":
        with sqlite3.connect(store.path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert oct((tmp_path / "h").stat().st_mode & 0o777) == "0o700"
    Store(tmp_path / "h")  # reopening does not migrate twice


def test_journal_is_append_only(tmp_path):
    store = Store(tmp_path)
    before = time.time()
    store.record("j1", "up", "begin", note="x")
    entry = store.journal("j1")[0]
    assert (entry.phase, entry.event, entry.detail) == ("up", "begin", {"note": "x"})
    assert before <= entry.ts <= time.time()  # 8-byte floats: a 4-byte REAL would round to 2 minutes
    with pytest.raises(store.db.errors, match="append-only"):
        with store.transaction() as db:
            db.execute("UPDATE journal SET event = 'end'")
    with pytest.raises(store.db.errors, match="append-only"):
        with store.transaction() as db:
            db.execute("DELETE FROM journal")


def test_only_one_live_lease_per_resource(tmp_path):
    store = Store(tmp_path)
    lease = store.add_lease("j1", "local", "workarea", "/w/j1", {"squall:job": "j1"}, time.time() + 60)
    with pytest.raises(store.db.errors, match="(?i)unique"):
        store.add_lease("j2", "local", "workarea", "/w/j1", {}, time.time() + 60)
    store.release_lease(lease)
    store.add_lease("j2", "local", "workarea", "/w/j1", {}, time.time() + 60)
    assert [l.job_id for l in store.leases()] == ["j2"]
    assert len(store.leases(live=False)) == 2


def _hammer(args: tuple[str, int]) -> int:
    home, worker = args
    store = Store(home)
    for i in range(50):
        store.record(f"w{worker}", "monitor", "tick", i=i)
        store.add_lease(f"w{worker}", "local", "workarea", f"/w/{worker}/{i}", {}, time.time())
    return worker


def test_concurrent_processes_never_lose_a_write(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        assert sorted(pool.map(_hammer, [(str(tmp_path), w) for w in range(4)])) == [0, 1, 2, 3]
    store = Store(tmp_path)
    assert len(store.journal()) == 200
    assert len(store.leases()) == 200
    assert [e.seq for e in store.journal()] == sorted(e.seq for e in store.journal())


def test_digest_cache_round_trip(tmp_path):
    store = Store(tmp_path)
    store.remember_digests([("/a", 1, 2, 3, "ab"), ("/b", 4, 5, 6, "cd")])
    assert store.cached_digests(["/a", "/c"]) == {"/a": (1, 2, 3, "ab")}


def test_a_signal_inside_a_transaction_waits_for_its_commit_and_the_next_one_works(tmp_path):
    """A Ctrl-C that lands between a write and its COMMIT must neither lose the write nor leave the
    connection inside a transaction (the next BEGIN then failed: an internal error mid-collect)."""
    store = Store(tmp_path)
    with SignalGuard():
        with pytest.raises(Interrupted):
            with store.transaction() as db:
                db.execute("INSERT INTO journal (ts, job_id, phase, event, detail) VALUES (?, ?, ?, ?, ?)",
                           (time.time(), "j1", "collect", "begin", "{}"))
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs in here and is deferred
        store.record("j1", "collect", "end")
    assert [e.event for e in store.journal("j1")] == ["begin", "end"]

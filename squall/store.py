"""The state store: typed access to Squall's tables, versioned migrations (one history for SQLite and
PostgreSQL; see ``squall.database`` for what differs between them).

Several processes share it at once (a controller per running job, plus ``job list``, ``gc``, servers...).
Every write runs in a transaction queued behind any other writer, so writers wait instead of failing, and
readers never block.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ContextManager

from squall.database import HOME_HINT, Connection, Database, open_database, store_wait
from squall.errors import HomeUnusable, StoreFull, StoreUnreachable
from squall.locks import locks_for
from squall.paths import ensure_private_dir
from squall.job_types import FINAL

journal_log = logging.getLogger("squall.journal")
log = logging.getLogger("squall.store")

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE sites (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        project TEXT NOT NULL,
        site TEXT NOT NULL,
        spec TEXT NOT NULL,
        spec_dir TEXT NOT NULL,
        results_dir TEXT NOT NULL,
        phase TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        network_isolated INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX jobs_by_created ON jobs(created_at);
    CREATE TABLE tasks (
        job_id TEXT NOT NULL REFERENCES jobs(id),
        idx INTEGER NOT NULL,
        status TEXT NOT NULL,
        inputs TEXT NOT NULL,
        exit_code INTEGER,
        wall_time REAL,
        max_rss_kb INTEGER,
        network_isolated INTEGER,
        stderr_tail TEXT,
        outputs INTEGER,
        PRIMARY KEY (job_id, idx)
    );
    CREATE TABLE journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        job_id TEXT,
        phase TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX journal_by_job ON journal(job_id, seq);
    CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    CREATE TABLE leases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT,
        site TEXT NOT NULL,
        kind TEXT NOT NULL,
        resource TEXT NOT NULL,
        tags TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        released_at REAL
    );
    CREATE UNIQUE INDEX leases_live ON leases(site, kind, resource) WHERE released_at IS NULL;
    CREATE TABLE digests (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        sha256 TEXT NOT NULL
    );
    """,
    # 2: what enrolment learnt about each site
    """
    CREATE TABLE site_reports (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site TEXT NOT NULL,
        action TEXT NOT NULL,
        status TEXT NOT NULL,
        report TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX site_reports_by_site ON site_reports(site, action, id);
    """,
    # 3: jobs that keep their remote folder; the shared per-site status poll
    """
    ALTER TABLE jobs ADD COLUMN keep_remote INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE site_polls (
        site TEXT PRIMARY KEY,
        at REAL NOT NULL,
        states TEXT NOT NULL
    );
    """,
    # 4: Pulumi stacks Squall drives (organisations, CI environments, cloud jobs) and the idle VM bank
    """
    CREATE TABLE stacks (
        name TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        overrides TEXT NOT NULL DEFAULT '{}',
        outputs TEXT NOT NULL DEFAULT '{}',
        job_id TEXT,
        expires_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE bank_vms (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        org TEXT NOT NULL,
        bank TEXT NOT NULL,
        slot INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('idle', 'claimed', 'retired')),
        address TEXT,
        owner TEXT,
        claimed_at REAL,
        expires_at REAL,
        created_at REAL NOT NULL,
        retired_at REAL
    );
    CREATE UNIQUE INDEX bank_vms_live_slot ON bank_vms(org, bank, slot) WHERE state != 'retired';
    CREATE INDEX bank_vms_by_state ON bank_vms(org, bank, state, created_at);
    """,
    # 5: this store's id (in every owner tag, so gc tells its own resources from another store's);
    # each job's organisation as it was at submission
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(6))));
    ALTER TABLE jobs ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
    """,
    # 6: why a task ended as it did (its host was lost, Slurm killed it...), shown with the task;
    #    the shared poll counts its remote calls instead of journaling each one
    """
    ALTER TABLE tasks ADD COLUMN error TEXT;
    ALTER TABLE site_polls ADD COLUMN calls INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE site_polls ADD COLUMN since REAL;
    """,
    # 7: money — each job's estimate (with the price model it was admitted with) and user; budgets per
    #    organisation or project, holds taken at admission and settled at the end, one usage record per job.
    #    Budgets are Decimal text; holds are whole cents (INTEGER: exact sums in SQL; never REAL, a float
    #    loses cents).
    """
    ALTER TABLE jobs ADD COLUMN estimate TEXT;
    ALTER TABLE jobs ADD COLUMN user TEXT NOT NULL DEFAULT '';
    CREATE TABLE budgets (
        scope TEXT PRIMARY KEY,
        currency TEXT NOT NULL,
        amount TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE holds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        currency TEXT NOT NULL,
        held_cents INTEGER NOT NULL,
        settled_cents INTEGER,
        created_at REAL NOT NULL,
        settled_at REAL,
        UNIQUE (job_id, scope)
    );
    CREATE INDEX holds_by_scope ON holds(scope, settled_cents, held_cents);
    CREATE TABLE usage (
        job_id TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        project TEXT NOT NULL,
        user TEXT NOT NULL,
        site TEXT NOT NULL,
        outcome TEXT NOT NULL,
        started_at REAL,
        ended_at REAL NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX usage_by_time ON usage(ended_at);
    CREATE TABLE tiers (
        name TEXT PRIMARY KEY,
        multiplier TEXT NOT NULL
    );
    INSERT INTO tiers (name, multiplier) VALUES ('gold', '1'), ('free', '5');
    CREATE TABLE members (
        org TEXT NOT NULL,
        user TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
        tier TEXT NOT NULL,
        PRIMARY KEY (org, user)
    );
    CREATE TABLE notifications (
        event_id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        sent_at REAL,
        failed TEXT
    );
    CREATE TABLE quotas (
        scope TEXT NOT NULL,
        resource TEXT NOT NULL,
        amount INTEGER NOT NULL,
        PRIMARY KEY (scope, resource)
    );
    CREATE TABLE reservations (
        job_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        resource TEXT NOT NULL,
        amount INTEGER NOT NULL,
        PRIMARY KEY (job_id, scope, resource)
    );
    CREATE INDEX reservations_by_scope ON reservations(scope, resource);
    CREATE TABLE price_splits (
        job_id TEXT PRIMARY KEY,
        split TEXT NOT NULL
    );
    """,
    # 8: API tokens for the server: shown once, stored as a sha256 of their secret part, each scoped to one
    #    organisation with a role (a partner's also to its application)
    """
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL,
        user TEXT NOT NULL,
        org TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'partner')),
        application TEXT,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    """,
    # 9: partner services and their price per job (P_ZOP), set by the operator: a spec names a service,
    #    never its price
    """
    CREATE TABLE services (
        partner TEXT PRIMARY KEY,
        currency TEXT NOT NULL,
        amount TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 10: tokens expire; those made before expiry existed get a year from their creation
    """
    ALTER TABLE tokens ADD COLUMN expires_at REAL;
    UPDATE tokens SET expires_at = created_at + 31536000;
    """,
    # 11: the dashboard's sign-in sessions: the browser holds a random id, the store its sha256 and the token
    #    it acts for
    """
    CREATE TABLE sessions (
        id_sha256 TEXT PRIMARY KEY,
        token_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX sessions_by_expiry ON sessions(expires_at);
    """,
]



def where(*conditions: tuple[str, object]) -> tuple[str, tuple]:
    """``"a = ? AND b > ?"`` and its values, from ``(clause, value)`` pairs whose value is given (not None)."""
    given = [(clause, value) for clause, value in conditions if value is not None]
    return " AND ".join(clause for clause, _ in given) or "TRUE", tuple(value for _, value in given)


@dataclass(frozen=True)
class JobRow:
    id: str
    name: str
    project: str
    site: str
    spec: dict
    spec_dir: str
    results_dir: str
    phase: str
    status: str
    error: str | None
    cancel_requested: bool
    network_isolated: bool | None
    created_at: float
    updated_at: float
    finished_at: float | None
    keep_remote: bool = False
    org: str = "default"
    estimate: dict | None = None  # the admitted site's estimate and price model (settlement uses it)
    user: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class TaskRow:
    job_id: str
    idx: int
    status: str
    inputs: list
    exit_code: int | None
    wall_time: float | None
    max_rss_kb: int | None
    network_isolated: bool | None
    stderr_tail: str | None
    outputs: int | None
    error: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    ts: float
    job_id: str | None
    phase: str
    event: str
    detail: dict


@dataclass(frozen=True)
class Lease:
    id: int
    job_id: str | None
    site: str
    kind: str
    resource: str
    tags: dict
    created_at: float
    expires_at: float
    released_at: float | None


def waits_for_store(write: Callable) -> Callable:
    """A store write the disk had no room for, or the database server did not take (rolled back whole), is
    made again as the store comes back, for up to ``store_wait()`` seconds counted from the first refusal —
    shared by every write of this store, so a controller that gives up does not wait again for each write
    on its way out. A journal entry is never dropped: it is written, or the job stops where it is
    (``HomeUnusable``, exit 7) for ``attach``. A store with ``patience`` 0 (the server's) fails at once."""

    @functools.wraps(write)
    def written(self: "Store", *args: Any, **kwargs: Any) -> Any:
        while True:
            try:
                result = write(self, *args, **kwargs)
            except (StoreFull, StoreUnreachable) as refused:
                now, wait = time.monotonic(), store_wait() if self.db.patience is None else self.db.patience
                if self._full_since is None:
                    self._full_since = now
                    if wait:
                        log.warning("%s; Squall writes again when it can (for %.0f s)", refused.message, wait)
                if now - self._full_since >= wait:
                    raise type(refused)(f"{refused.message} (for {now - self._full_since:.0f} s)",
                                        hint=f"{refused.hint}; then 'squall job attach ID' resumes a job it "
                                             "stopped (nothing of it was removed)") from None
                time.sleep(1.0)
                continue
            self._full_since = None
            return result

    return written


class Store:
    """Typed access to the store's tables; one instance per process.

    The tables live in ``HOME/squall.db`` or, when ``SQUALL_DATABASE_URL`` names one, a PostgreSQL
    database a team shares (see ``squall.database``). ``read_only`` opens an existing SQLite store
    without writing to it (``job list`` on a read-only home); any failure to open names the path (or the
    URL, without its password) and exits with ``HomeUnusable``'s code, never as an internal error.
    """

    def __init__(self, home: Path, read_only: bool = False, url: str | None = None):
        self.home = Path(home)
        self.read_only = read_only
        self._full_since: float | None = None  # when writes began to find the disk full (see waits_for_store)
        self.db: Database = open_database(self.home, read_only, url)
        if not read_only:
            try:  # locks, logs, sites' work areas: the home holds more than the tables
                ensure_private_dir(self.home)
            except OSError as exc:
                self.db.close()
                raise HomeUnusable(f"Squall home {self.home}: {exc.strerror}", hint=HOME_HINT) from None
        self.locks = locks_for(self.home, self.db)
        try:
            if read_only:
                if self.schema_version != len(MIGRATIONS):
                    raise HomeUnusable(f"Squall store {self.db.where} has an older schema and this home is "
                                       "read-only", hint="open it once with a writable home to upgrade it")
            else:
                self._migrate()
        except HomeUnusable:
            self.db.close()
            raise
        except self.db.errors as exc:
            self.db.close()
            raise HomeUnusable(f"Squall store {self.db.where}: {str(exc).splitlines()[0]}", hint=HOME_HINT) from None

    @property
    def path(self) -> Path:
        return self.home / "squall.db"

    @cached_property
    def store_id(self) -> str:
        """Random, made once per store (never changes); carried by every owner tag this store writes."""
        return self.db.rows("SELECT value FROM meta WHERE key = 'store_id'")[0][0]

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> ContextManager[Connection]:
        """One write transaction, queued behind any other writer (on every machine sharing the database)."""
        return self.db.transaction()

    def rows(self, sql: str, params: tuple | dict = ()) -> list:
        """A read outside a transaction (a consistent snapshot), for the modules owning other tables."""
        return self.db.rows(sql, params)

    def _row(self, sql: str, params: tuple | dict = ()) -> Any:
        rows = self.db.rows(sql, params)
        return rows[0] if rows else None

    @property
    def schema_version(self) -> int:
        return self.db.schema_version()

    def _migrate(self) -> None:
        if self.schema_version >= len(MIGRATIONS):
            return
        with self.transaction() as db:
            current = self.db.schema_version()
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in self.db.statements(script):
                    db.execute(statement)
                self.db.set_schema_version(db, version)

    # jobs and tasks -----------------------------------------------------

    def create_job(self, job: JobRow, task_inputs: list[list[str]],
                   admit: Callable[[Connection], None] | None = None) -> None:
        """Insert a job and its tasks; fails if the id is taken (ids are random).

        ``admit`` runs first in the same transaction (budget and quota holds): if it raises, nothing is
        written, so a refused job leaves no trace and two submitters can never both take the last of a budget."""
        with self.transaction() as db:
            if admit is not None:
                admit(db)
            db.execute(
                "INSERT INTO jobs VALUES (:id, :name, :project, :site, :spec, :spec_dir, "
                ":results_dir, :phase, :status, :error, :cancel_requested, :network_isolated, "
                ":created_at, :updated_at, :finished_at, :keep_remote, :org, :estimate, :user)",
                {**job.__dict__, "spec": json.dumps(job.spec),
                 "estimate": None if job.estimate is None else json.dumps(job.estimate)},
            )
            db.executemany(
                "INSERT INTO tasks (job_id, idx, status, inputs) VALUES (?, ?, 'pending', ?)",
                [(job.id, index, json.dumps(inputs)) for index, inputs in enumerate(task_inputs)],
            )

    def job(self, job_id: str) -> JobRow | None:
        row = self._row("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    def job_ids_starting(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids of jobs that start with ``prefix`` (at most ``limit``), newest first."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.rows("SELECT id FROM jobs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT ?",
                                (escaped + "%", limit))
        return [row[0] for row in rows]

    def jobs(self, limit: int | None = 50, site: str | None = None, project: str | None = None,
             org: str | None = None, user: str | None = None, before: str | None = None) -> list[JobRow]:
        """Newest first; only those at ``site`` / of ``project`` / ``org`` / ``user`` when given, and older than
        job ``before`` (a cursor: the last job of the page before); all of them when ``limit`` is None."""
        clauses, values = where(("site = ?", site), ("project = ?", project), ("org = ?", org), ('"user" = ?', user),
                                ("(created_at < (SELECT created_at FROM jobs WHERE id = ?) OR (created_at = (SELECT "
                                 "created_at FROM jobs WHERE id = ?) AND id < ?))", before))
        if before is not None:  # the cursor's clause names it three times
            values = (*values, before, before)
        sql = f"SELECT * FROM jobs WHERE {clauses} ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql, values = f"{sql} LIMIT ?", (*values, limit)
        return [_job(row) for row in self.rows(sql, values)]

    @waits_for_store
    def update_job(self, job_id: str, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        assignments = ", ".join(f'"{name}" = :{name}' for name in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = :job_id", {**fields, "job_id": job_id})

    def tasks(self, job_id: str) -> list[TaskRow]:
        rows = self.rows(
            "SELECT * FROM tasks WHERE job_id = ? ORDER BY idx", (job_id,)
        )
        return [_task(row) for row in rows]

    @waits_for_store
    def update_tasks(self, job_id: str, updates: dict[int, dict[str, Any]]) -> None:
        with self.transaction() as db:
            for index, fields in updates.items():
                assignments = ", ".join(f'"{name}" = :{name}' for name in fields)
                db.execute(
                    f"UPDATE tasks SET {assignments} WHERE job_id = :job_id AND idx = :idx",
                    {**fields, "job_id": job_id, "idx": index},
                )

    # journal --------------------------------------------------------------

    @waits_for_store
    def record(self, job_id: str | None, phase: str, event: str, **detail: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO journal (ts, job_id, phase, event, detail) VALUES (?, ?, ?, ?, ?)",
                (time.time(), job_id, phase, event, json.dumps(detail, default=str)),
            )
        extra = {"labels.job_id": job_id, "labels.phase": phase, "labels.event": event}
        if isinstance(detail.get("index"), int):
            extra["labels.task_index"] = detail["index"]
        journal_log.info("%s %s %s", job_id or "-", phase, event, extra=extra)

    def journal(self, job_id: str | None = None) -> list[JournalEntry]:
        query = "SELECT * FROM journal" + (" WHERE job_id = ?" if job_id else "") + " ORDER BY seq"
        rows = self.rows(query, (job_id,) if job_id else ())
        return [
            JournalEntry(r["seq"], r["ts"], r["job_id"], r["phase"], r["event"], json.loads(r["detail"]))
            for r in rows
        ]

    # leases ---------------------------------------------------------------

    @waits_for_store
    def add_lease(
        self, job_id: str | None, site: str, kind: str, resource: str, tags: dict, expires_at: float
    ) -> int:
        with self.transaction() as db:
            row = db.execute(
                "INSERT INTO leases (job_id, site, kind, resource, tags, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (job_id, site, kind, resource, json.dumps(tags), time.time(), expires_at),
            ).fetchone()
            return int(row[0])

    def leases(self, *, job_id: str | None = None, site: str | None = None, live: bool = True) -> list[Lease]:
        clauses, params = [], []
        if live:
            clauses.append("released_at IS NULL")
        if job_id:
            clauses.append("job_id = ?")
            params.append(job_id)
        if site:
            clauses.append("site = ?")
            params.append(site)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.rows(f"SELECT * FROM leases{where} ORDER BY id", params)
        return [_lease(row) for row in rows]

    @waits_for_store
    def extend_leases(self, job_id: str, expires_at: float) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE leases SET expires_at = ? WHERE job_id = ? AND released_at IS NULL",
                (expires_at, job_id),
            )

    @waits_for_store
    def release_lease(self, lease_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE leases SET released_at = ? WHERE id = ? AND released_at IS NULL",
                (time.time(), lease_id),
            )

    # sites ----------------------------------------------------------------

    def ensure_site(self, name: str, kind: str, config: dict | None = None) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sites VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
                (name, kind, json.dumps(config or {}), now, now),
            )

    def set_site(self, name: str, kind: str, config: dict) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO sites VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE "
                "SET kind = excluded.kind, config = excluded.config, updated_at = excluded.updated_at",
                (name, kind, json.dumps(config), now, now),
            )

    @waits_for_store
    def add_site_report(self, site: str, action: str, status: str, report: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO site_reports (site, action, status, report, at) VALUES (?, ?, ?, ?, ?)",
                (site, action, status, json.dumps(report, default=str), time.time()),
            )

    def last_site_report(self, site: str, action: str) -> tuple[dict, float] | None:
        row = self._row(
            "SELECT report, at FROM site_reports WHERE site = ? AND action = ? ORDER BY id DESC LIMIT 1",
            (site, action),
        )
        return (json.loads(row["report"]), row["at"]) if row else None

    def site_poll(self, site: str) -> tuple[float, dict] | None:
        row = self._row("SELECT at, states FROM site_polls WHERE site = ?", (site,))
        return (row["at"], json.loads(row["states"])) if row else None

    @waits_for_store
    def save_site_poll(self, site: str, at: float, states: dict) -> None:
        """The answer of one remote poll for every controller at ``site``; the calls are counted, not journaled."""
        with self.transaction() as db:
            db.execute("INSERT INTO site_polls (site, at, states, calls, since) VALUES (?, ?, ?, 1, ?) "
                       "ON CONFLICT (site) DO UPDATE SET at = excluded.at, states = excluded.states, "
                       "calls = site_polls.calls + 1", (site, at, json.dumps(states), at))

    def jobs_in_phase(self, phase: str) -> list[JobRow]:
        rows = self.rows("SELECT * FROM jobs WHERE phase = ? ORDER BY created_at", (phase,))
        return [_job(row) for row in rows]

    def unfinished_jobs(self) -> list[JobRow]:
        """Jobs a controller should be driving (``pending`` or ``running``), oldest first."""
        return [_job(row) for row in
                self.rows("SELECT * FROM jobs WHERE status IN ('pending', 'running') ORDER BY created_at")]

    def active_jobs(self, site: str) -> list[JobRow]:
        rows = self.rows(
            "SELECT * FROM jobs WHERE site = ? AND phase IN ('launch', 'monitor', 'collect')", (site,)
        )
        return [_job(row) for row in rows]

    def remove_site(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM sites WHERE name = ?", (name,))

    def sites(self) -> list[tuple[str, str, dict]]:
        rows = self.rows("SELECT name, kind, config FROM sites ORDER BY name")
        return [(r["name"], r["kind"], json.loads(r["config"])) for r in rows]

    # digest cache -----------------------------------------------------------

    def cached_digests(self, paths: list[str]) -> dict[str, tuple[int, int, int, str]]:
        """``path -> (size, mtime_ns, inode, sha256)`` for the paths already hashed."""
        found: dict[str, tuple[int, int, int, str]] = {}
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.rows(f"SELECT * FROM digests WHERE path IN ({marks})", chunk):
                found[row["path"]] = (row["size"], row["mtime_ns"], row["inode"], row["sha256"])
        return found

    @waits_for_store
    def remember_digests(self, entries: list[tuple[str, int, int, int, str]]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT INTO digests VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                           "size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode, "
                           "sha256 = excluded.sha256", entries)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _job(row: sqlite3.Row) -> JobRow:
    data = dict(row)
    data["spec"] = json.loads(data["spec"])
    data["cancel_requested"] = bool(data["cancel_requested"])
    data["network_isolated"] = _bool(data["network_isolated"])
    data["keep_remote"] = bool(data["keep_remote"])
    data["estimate"] = json.loads(data["estimate"]) if data["estimate"] else None
    return JobRow(**data)


def _task(row: sqlite3.Row) -> TaskRow:
    data = dict(row)
    data["inputs"] = json.loads(data["inputs"])
    data["network_isolated"] = _bool(data["network_isolated"])
    return TaskRow(**data)


def _lease(row: sqlite3.Row) -> Lease:
    data = dict(row)
    data["tags"] = json.loads(data["tags"])
    return Lease(**data)

"""Where the store's tables live: one SQLite file (the default: one user, one machine) or a PostgreSQL
database (``SQUALL_DATABASE_URL=postgresql://...``: a team's servers and controllers on several machines).

Both take the same SQL — ``?`` or ``:name`` parameters, ``ON CONFLICT`` upserts, ``RETURNING`` — and give
rows readable by position and by name. What differs is kept here: how a connection is opened, how a write
transaction queues behind the others (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL one transaction-level
advisory lock taken first, so writers are serialised the same way on every machine sharing the
database), where the schema version is kept, and how migrations' DDL is spelt (``ddl_for``).

SQLite goes through the standard library's driver (WAL, busy timeout, read-only opening of an immutable
file); PostgreSQL through SQLAlchemy (its URL parsing, connection pool and the psycopg driver).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

from squall.env_seconds import env_seconds
from squall.errors import HomeUnusable, StoreFull, StoreUnreachable
from squall.interrupts import uninterrupted
from squall.paths import ensure_private_dir

HOME_HINT = "check the folder, or point --home / $SQUALL_HOME at another one"
URL_HINT = "check SQUALL_DATABASE_URL (postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE) and that the server is up"


class Connection(Protocol):
    """What a transaction gives its body: ``execute(sql, params)`` with ``fetchall``/``fetchone``/``rowcount``
    on the result, and ``executemany``."""

    def execute(self, sql: str, params: tuple | dict = ...) -> Any: ...

    def executemany(self, sql: str, params: Iterable[tuple | dict]) -> Any: ...


class Database(Protocol):
    dialect: str  # "sqlite" or "postgresql"
    where: str  # for messages: the file's path, or the URL without its password
    errors: tuple[type[Exception], ...]  # what a failed statement raises (the driver's errors)

    def transaction(self) -> Any: ...

    def rows(self, sql: str, params: tuple | dict = ()) -> list: ...

    def schema_version(self) -> int: ...

    def set_schema_version(self, db: Connection, version: int) -> None: ...

    def statements(self, script: str) -> list[str]: ...

    def close(self) -> None: ...


DEFAULT_STORE_WAIT = 600.0
log = logging.getLogger("squall.store")


def store_wait() -> float:
    """Seconds a controller waits for its store to take a write again (a full disk, a database server that
    does not answer) before it stops where it is (exit 7, for ``attach``)."""
    return env_seconds("SQUALL_STORE_WAIT", DEFAULT_STORE_WAIT)


def open_database(home: Path, read_only: bool = False, url: str | None = None) -> "Database":
    """PostgreSQL when ``url`` (or ``$SQUALL_DATABASE_URL``) is set, else ``HOME/squall.db``."""
    url = url or os.environ.get("SQUALL_DATABASE_URL") or ""
    if not url or url.startswith("sqlite"):
        return SqliteDatabase(Path(home) / "squall.db", read_only)
    if not url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        raise HomeUnusable(f"SQUALL_DATABASE_URL: {url.split(':', 1)[0]!r} is not a database Squall can use",
                           hint="use postgresql://... or leave it unset for the SQLite file in the home")
    return PostgresDatabase(url, read_only)


# SQLite ---------------------------------------------------------------------------------------------------


class SqliteDatabase:
    """One shared connection per process (WAL: readers never block); writes serialised by ``BEGIN IMMEDIATE``
    with a long busy timeout, so writers in several processes queue instead of failing."""

    dialect = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)  # what a failed statement raises
    patience = None  # seconds a write waits for room (None: store_wait()); 0: the server answers at once

    def __init__(self, path: Path, read_only: bool = False):
        self.path = path
        self.where = str(path)
        self._writing = threading.RLock()
        home = path.parent
        try:
            if home.exists() and not home.is_dir():
                raise HomeUnusable(f"Squall home {home} is a file, not a folder", hint=HOME_HINT)
            if path.exists() and not path.is_file():
                raise HomeUnusable(f"Squall store {path} is not a file", hint=HOME_HINT)
            self._db = self._open_read_only() if read_only else self._open_writable()
        except sqlite3.DatabaseError as exc:
            raise HomeUnusable(f"Squall store {path}: {exc}", hint=HOME_HINT) from None
        except OSError as exc:
            raise HomeUnusable(f"Squall home {exc.filename or home}: {exc.strerror}", hint=HOME_HINT) from None

    def _open_writable(self) -> sqlite3.Connection:
        home = self.path.parent
        ensure_private_dir(home)
        if not os.access(home, os.W_OK):
            raise HomeUnusable(f"Squall home {home} is not writable", hint=HOME_HINT)
        # shared with gc's listing threads (a retry is journaled from there); writes are serialised
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout = 60000")
        _enable_wal(db)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def _open_read_only(self) -> sqlite3.Connection:
        """Read without writing; on a read-only file system where SQLite cannot make its WAL index, as an
        immutable file (what the last writer checkpointed, which is everything once it closed)."""
        if not self.path.is_file():
            raise HomeUnusable(f"Squall store {self.path} does not exist yet", hint="run a job first")
        for query in ("mode=ro", "mode=ro&immutable=1"):
            db = sqlite3.connect(f"{self.path.as_uri()}?{query}", uri=True, isolation_level=None,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            try:
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()
        raise HomeUnusable(f"Squall store {self.path} cannot be read", hint=HOME_HINT)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A signal inside waits for the COMMIT or ROLLBACK (``uninterrupted``): raised between the body and
        the COMMIT it lost the write and left the connection in a transaction, so the next BEGIN failed."""
        with self._writing:
            if self._db.in_transaction:  # a signal came right after the last BEGIN: nothing was written in it
                self._db.execute("ROLLBACK")
            self._db.execute("BEGIN IMMEDIATE")
            with uninterrupted(), _full_as(StoreFull, self.where, _sqlite_full):
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise

    def rows(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """A read outside a transaction (WAL: a consistent snapshot)."""
        return self._db.execute(sql, params).fetchall()

    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, db: sqlite3.Connection, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def statements(self, script: str) -> list[str]:
        """A migration's statements; triggers keep their inner ``;``."""
        statements, buffer = [], ""
        for line in script.strip().splitlines():
            buffer += line + "\n"
            if sqlite3.complete_statement(buffer):
                statements.append(buffer.strip())
                buffer = ""
        return statements

    def close(self) -> None:
        self._db.close()


@contextmanager
def _full_as(error: type[Exception], where: str, is_full: Callable[[BaseException], bool],
             what: str = ": the disk holding it is full") -> Iterator[None]:
    """A write the disk had no room for (or a database that does not answer) raises ``error`` naming the
    store; the transaction was rolled back."""
    try:
        yield
    except Exception as exc:
        if is_full(exc):
            hint = (f"free space on the file system of {where}" if error is StoreFull
                    else "is the database server up and reachable?")
            raise error(f"Squall store {where}{what}", hint=hint) from exc
        raise


def _sqlite_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _postgres_unreachable(exc: BaseException) -> bool:
    """The server is gone or restarting (a dropped connection, a refused one, an admin shutdown)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if not isinstance(exc, (OperationalError, InterfaceError, DBAPIError)):
        return False
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError)) and (
        state is None or state.startswith(("08", "57P")))


def _postgres_full(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "53100"  # disk_full


def _enable_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL; SQLite skips the busy handler for this pragma, so retry by hand.

    Only the very first open of a new file can collide (another process creating the schema); WAL is
    persistent after that.
    """
    deadline = time.monotonic() + 60
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# PostgreSQL -----------------------------------------------------------------------------------------------

# A dead machine's sessions (and the controller locks they hold) end within about a minute, not hours.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
WRITERS_KEY = "squall:writers"  # the advisory lock every write transaction takes first


def lock_key(name: str) -> int:
    """A PostgreSQL advisory lock key (signed 64-bit) for ``name``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class Record(tuple):
    """A row readable by position and by column name (like ``sqlite3.Row``; ``dict(row)`` works too)."""

    _columns: dict[str, int]

    def __new__(cls, values: Iterable[Any], columns: dict[str, int]) -> "Record":
        record = super().__new__(cls, values)
        record._columns = columns
        return record

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        return super().__getitem__(self._columns[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._columns)


class _Result:
    def __init__(self, result: Any):
        self.rowcount = result.rowcount
        if result.returns_rows:
            columns = {name: i for i, name in enumerate(result.keys())}
            self._rows = [Record((_plain(v) for v in row), columns) for row in result]
        else:
            self._rows = []

    def fetchall(self) -> list[Record]:
        return self._rows

    def fetchone(self) -> Record | None:
        return self._rows[0] if self._rows else None

    def __iter__(self) -> Iterator[Record]:
        return iter(self._rows)


def _plain(value: Any) -> Any:
    """PostgreSQL's ``SUM`` of integers is ``numeric``: a whole ``Decimal`` becomes an ``int`` as SQLite gives."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


@lru_cache(maxsize=512)
def _named(sql: str) -> str:
    """``?`` placeholders as ``:p0, :p1...`` (SQLAlchemy's ``text()``)."""
    parts = sql.split("?")
    return "".join(part + (f":p{i}" if i < len(parts) - 1 else "") for i, part in enumerate(parts))


def _params(params: tuple | list | dict) -> dict:
    values = params.items() if isinstance(params, dict) else ((f"p{i}", v) for i, v in enumerate(params))
    return {name: int(value) if isinstance(value, bool) else value for name, value in values}


class _PgConnection:
    """A transaction's connection taking the store's SQL (``?`` or ``:name`` parameters)."""

    def __init__(self, connection: Any):
        self._connection = connection

    def execute(self, sql: str, params: tuple | dict = ()) -> _Result:
        from sqlalchemy import text

        return _Result(self._connection.execute(text(_named(sql)), _params(params)))

    def executemany(self, sql: str, params: Iterable[tuple | dict]) -> None:
        from sqlalchemy import text

        batch = [_params(p) for p in params]
        if batch:
            self._connection.execute(text(_named(sql)), batch)


class PostgresDatabase:
    """A pool of connections (one per thread at a time); every write transaction first takes the writers'
    advisory lock, as SQLite's ``BEGIN IMMEDIATE`` does for a file: a budget check and the hold it takes,
    or a bank VM's claim, are never interleaved with another machine's."""

    dialect = "postgresql"
    patience = None  # seconds a read or write waits for the server (None: store_wait()); 0: fail at once

    def __init__(self, url: str, read_only: bool = False):
        try:
            from sqlalchemy import create_engine, make_url
            from sqlalchemy.exc import ArgumentError, SQLAlchemyError
        except ImportError:
            raise HomeUnusable("SQUALL_DATABASE_URL names PostgreSQL, but its driver is not installed",
                               hint="pip install 'squall[postgres]'") from None
        try:
            given = make_url(url)
        except ArgumentError:
            raise HomeUnusable("SQUALL_DATABASE_URL cannot be read as a URL", hint=URL_HINT) from None
        self.where = given.render_as_string(hide_password=True)  # never the password, in any message
        parsed = given.set(drivername="postgresql+psycopg")
        self.read_only = read_only
        who = f"squall pid {os.getpid()} on {socket.gethostname()}"[:63]  # pg_stat_activity: who holds a lock
        self.engine = create_engine(parsed, pool_pre_ping=True, pool_size=4, max_overflow=16,
                                    connect_args={"application_name": who, "connect_timeout": 10, **KEEPALIVES})
        try:
            with self.transaction() as connection:  # IF NOT EXISTS alone races another process's CREATE
                connection.execute("CREATE TABLE IF NOT EXISTS squall_schema (version INTEGER NOT NULL)")
        except (SQLAlchemyError, StoreUnreachable) as exc:  # at start: a wrong URL as much as a server down
            cause = exc.__cause__ if isinstance(exc, StoreUnreachable) else exc
            raise HomeUnusable(f"Squall database {self.where}: {_first_line(cause)}", hint=URL_HINT) from None
        self.errors = (SQLAlchemyError,)

    @contextmanager
    def transaction(self) -> Iterator[_PgConnection]:
        from sqlalchemy import text

        with _full_as(StoreUnreachable, self.where, _postgres_unreachable, " does not answer"), \
                self.engine.connect() as connection:  # closed on the way out: a transaction left open rolls back
            transaction = connection.begin()
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(WRITERS_KEY)})
            # as on SQLite: a signal waits for the COMMIT or ROLLBACK
            with uninterrupted(), _full_as(StoreFull, self.where, _postgres_full):
                try:
                    yield _PgConnection(connection)
                except BaseException:
                    transaction.rollback()
                    raise
                transaction.commit()

    def rows(self, sql: str, params: tuple | dict = ()) -> list[Record]:
        """A read; while the server does not answer, asked again for up to ``patience`` seconds."""
        from sqlalchemy import text

        def read() -> list[Record]:
            with _full_as(StoreUnreachable, self.where, _postgres_unreachable, " does not answer"), \
                    self.engine.connect() as connection:
                return _Result(connection.execute(text(_named(sql)), _params(params))).fetchall()

        wait = store_wait() if self.patience is None else self.patience
        deadline, said = time.monotonic() + wait, False
        while True:
            try:
                return read()
            except StoreUnreachable as exc:
                if time.monotonic() >= deadline:
                    raise
                if not said:
                    log.warning("%s; Squall asks again (for %.0f s)", exc.message, wait)
                    said = True
                time.sleep(1.0)

    def schema_version(self) -> int:
        rows = self.rows("SELECT MAX(version) FROM squall_schema")
        return rows[0][0] or 0

    def set_schema_version(self, db: _PgConnection, version: int) -> None:
        db.execute("DELETE FROM squall_schema")
        db.execute("INSERT INTO squall_schema (version) VALUES (?)", (version,))

    def statements(self, script: str) -> list[str]:
        """A migration's statements in PostgreSQL's spelling (see ``ddl_for``)."""
        return [s.strip() for s in split_top_level(postgres_ddl(script)) if s.strip()]

    def close(self) -> None:
        self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__


# migrations' DDL in PostgreSQL's spelling ------------------------------------------------------------------

_APPEND_ONLY = """
CREATE FUNCTION squall_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the journal is append-only'; END $$;
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal
    FOR EACH ROW EXECUTE FUNCTION squall_append_only();
"""

_SPELLINGS = [
    # SQLite's append-only triggers: one PL/pgSQL trigger function
    (re.compile(r"CREATE TRIGGER journal_no_update.*?END;\s*CREATE TRIGGER journal_no_delete.*?END;", re.S),
     _APPEND_ONLY.strip()),
    (re.compile(r"INTEGER PRIMARY KEY AUTOINCREMENT"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),  # PostgreSQL's REAL is 4 bytes: 2-minute timestamps
    (re.compile(r"\bINTEGER\b"), "BIGINT"),  # inodes, nanosecond mtimes and cents outgrow 4 bytes
    (re.compile(r"lower\(hex\(randomblob\((\d+)\)\)\)"), r"substr(md5(random()::text), 1, 2 * \1)"),
    (re.compile(r"(?<![\"\w])user(?![\"\w])(?=\s+TEXT|\)|,)"), '"user"'),  # a reserved word in PostgreSQL
]


def postgres_ddl(script: str) -> str:
    """One migration, written for SQLite, in PostgreSQL's spelling: the history stays one list."""
    for pattern, spelling in _SPELLINGS:
        script = pattern.sub(spelling, script)
    return script


def split_top_level(script: str) -> list[str]:
    """Statements split at ``;`` outside ``$$`` bodies."""
    statements, buffer, quoted = [], "", False
    for piece in re.split(r"(\$\$|;)", script):
        if piece == "$$":
            quoted = not quoted
        if piece == ";" and not quoted:
            statements.append(buffer)
            buffer = ""
        else:
            buffer += piece
    return [*statements, buffer]

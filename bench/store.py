"""Benchmark of the store (issue 16): the runner's test suite — the store's, the budget race's, the local job
lifecycle's and the money CLI's tests, which drive the real CLI end to end — once on the SQLite file and once
on PostgreSQL (a private server from Debian's packages, started by the tests), in the same run; prints each
wall time and their ratio. No target: the issue asks for the ratio.

    .venv/bin/python bench/store.py [--output json]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = ["tests/unit/test_store.py", "tests/unit/test_budget_race.py", "tests/cli/test_job_run.py",
         "tests/cli/test_money_cli.py"]


def timed_suite(database: str) -> tuple[float, str]:
    """Wall seconds of the suite's tests on ``database``; pytest's summary line."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", database, *SUITE],
                          cwd=REPO, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    if proc.returncode != 0:
        raise SystemExit(f"the suite failed on {database}: {summary}")
    return elapsed, summary


def main() -> None:
    sqlite, sqlite_summary = timed_suite("sqlite")
    postgres, postgres_summary = timed_suite("postgresql")
    figures = {"sqlite_s": round(sqlite, 1), "postgresql_s": round(postgres, 1),
               "ratio_postgresql_to_sqlite": round(postgres / sqlite, 2),
               "sqlite_tests": sqlite_summary, "postgresql_tests": postgres_summary}
    if "--output" in sys.argv and "json" in sys.argv:
        print(json.dumps(figures))
        return
    print(f"runner suite on SQLite:     {sqlite:7.1f} s  ({sqlite_summary})")
    print(f"runner suite on PostgreSQL: {postgres:7.1f} s  ({postgres_summary})")
    print(f"ratio PostgreSQL / SQLite:  {postgres / sqlite:7.2f}")


if __name__ == "__main__":
    main()

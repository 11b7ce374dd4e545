"""Limits checked in the transaction that creates a job, with its budget holds (so they cannot be raced)."""

from __future__ import annotations

import sqlite3

from squall.errors import Refused


def check_site_limit(db: sqlite3.Connection, site: str, limit: int | None) -> None:
    """A site's own cap on unfinished jobs (an inventory's ``squall_max_concurrent_jobs``)."""
    if limit is None:
        return
    (unfinished,) = db.execute("SELECT COUNT(*) FROM jobs WHERE site = ? AND phase != 'done'", (site,)).fetchone()
    if unfinished >= limit:
        raise Refused(f"site {site!r}: {unfinished} unfinished job(s) already, at its limit of {limit} "
                      "(squall_max_concurrent_jobs)", hint="wait for one to finish, or run elsewhere")

"""Limits checked in the transaction that creates a job, with its budget holds (so they cannot be raced).

Quotas are per user (``user:ORG/USER``) and per project (``project:ORG/P``) on jobs, machines, CPUs,
memory, GPUs and staged storage. A job reserves, from its admission until it is done, all its tasks'
resources at once (the most it can hold); it counts as *used* while it runs and *reserved* before.
"""

from __future__ import annotations

from dataclasses import dataclass

from squall.database import Connection
from squall.errors import Refused
from squall.job_types import JobPlan


def check_site_limit(db: Connection, site: str, limit: int | None) -> None:
    """A site's own cap on unfinished jobs (an inventory's ``squall_max_concurrent_jobs``)."""
    if limit is None:
        return
    (unfinished,) = db.execute("SELECT COUNT(*) FROM jobs WHERE site = ? AND phase != 'done'", (site,)).fetchone()
    if unfinished >= limit:
        raise Refused(f"site {site!r}: {unfinished} unfinished job(s) already, at its limit of {limit} "
                      "(squall_max_concurrent_jobs)", hint="wait for one to finish, or run elsewhere")


RESOURCES = ("jobs", "machines", "cpus", "memory_mb", "gpus", "storage_mb")
MB = 1 << 20


def job_amounts(plan: JobPlan) -> dict[str, int]:
    """What a job reserves while unfinished: all its tasks at once (the most it can hold), and its inputs."""
    res = plan.spec.resources
    nodes = len(plan.tasks) * res.nodes
    return {"jobs": 1, "machines": nodes, "cpus": res.cpus_per_node * nodes,
            "memory_mb": ((res.memory_bytes or 0) // MB) * nodes, "gpus": res.gpus * nodes,
            "storage_mb": -(-sum(i.size for t in plan.tasks for i in t.inputs) // MB)}


def quota_scopes(org: str, project: str, user: str) -> list[str]:
    return [f"user:{org}/{user}", f"project:{org}/{project}"]


@dataclass(frozen=True)
class QuotaState:
    scope: str
    resource: str
    limit: int | None  # None: no limit
    used: int  # by jobs that are running (launch, monitor, collect)
    reserved: int  # by admitted jobs not running yet (plan, up, stage) or finishing (down)

    @property
    def available(self) -> int | None:
        return None if self.limit is None else self.limit - self.used - self.reserved

    def to_dict(self) -> dict:
        return {"scope": self.scope, "resource": self.resource, "default": None, "limit": self.limit,
                "used": self.used, "reserved": self.reserved, "available": self.available}


def quota_state(query, scope: str, resource: str) -> QuotaState:
    """``query``: ``Store.rows`` or a transaction's (see ``ledger.in_transaction``)."""
    found = query("SELECT amount FROM quotas WHERE scope = ? AND resource = ?", (scope, resource))
    ((used, reserved),) = query(
        "SELECT COALESCE(SUM(CASE WHEN j.phase IN ('launch', 'monitor', 'collect') THEN r.amount END), 0), "
        "COALESCE(SUM(CASE WHEN j.phase NOT IN ('launch', 'monitor', 'collect') THEN r.amount END), 0) "
        "FROM reservations r JOIN jobs j ON j.id = r.job_id WHERE r.scope = ? AND r.resource = ? "
        "AND j.phase != 'done'", (scope, resource))
    return QuotaState(scope, resource, found[0][0] if found else None, used, reserved)


def reserve(db: Connection, job_id: str, scopes: list[str], amounts: dict[str, int]) -> None:
    """Check every limit over the job and reserve its amounts (in the job's creating transaction)."""
    from squall.money.ledger import in_transaction

    for scope in scopes:
        for resource, amount in amounts.items():
            state = quota_state(in_transaction(db), scope, resource)
            if state.limit is not None and amount > (state.available or 0):
                raise Refused(f"quota {scope} {resource}: {state.available} available of {state.limit} "
                              f"({state.used} used, {state.reserved} reserved); this job needs {amount}",
                              hint=f"wait for jobs to finish, or 'squall quota set {scope} {resource} N'")
            if amount:
                db.execute("INSERT INTO reservations (job_id, scope, resource, amount) VALUES (?, ?, ?, ?)",
                           (job_id, scope, resource, amount))

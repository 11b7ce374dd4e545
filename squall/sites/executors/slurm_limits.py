"""A Slurm account's own limits: the GrpTRES, GrpJobs, GrpSubmitJobs and MaxJobs of its association and of
every account above it, with what is used of them now, as ``scontrol show assoc_mgr`` prints them (read by
the runtime's ``limits`` agent call on the login node).

What Squall does with them is in ``squall.money.site_limits``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from squall.money.site_limits import SiteLimit

TRES_RESOURCES = {"cpu": "cpus", "mem": "memory_mb", "gres/gpu": "gpus", "node": "machines"}
JOB_COUNTS = ("GrpJobs", "GrpSubmitJobs", "MaxJobs", "MaxSubmitJobs")  # each array element is one Slurm job
LIMIT = re.compile(r"^(N|\d+)\((\d+)\)$")  # "N(0)": no limit, 0 used; "8(2)": 8, 2 used


@dataclass(frozen=True)
class Association:
    account: str
    user: str  # "" for an account's own record
    partition: str  # "" when it holds in every partition
    parent: str
    default: bool
    limits: dict[str, tuple[int, int, str]]  # resource -> (limit, used, Slurm's name of it); only set limits


def _fields(record: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in record.split() if "=" in word)


def _limit(text: str) -> tuple[int, int] | None:
    found = LIMIT.match(text)
    return None if not found or found[1] == "N" else (int(found[1]), int(found[2]))


def parse_associations(records: list[str]) -> list[Association]:
    """The records the agent returned (one ``ClusterName=…`` block each)."""
    found = []
    for record in records:
        fields = _fields(record)
        limits = {}
        for name in JOB_COUNTS:
            value = _limit(fields.get(name, ""))
            if value:
                limits[f"jobs:{name}"] = (*value, name)
        for item in fields.get("GrpTRES", "").split(","):
            tres, _, text = item.partition("=")
            value = _limit(text)
            if value and tres in TRES_RESOURCES:
                limits[TRES_RESOURCES[tres]] = (*value, f"GrpTRES {tres}")
        found.append(Association(
            account=fields.get("Account", ""), user=fields.get("UserName", "").split("(")[0],
            partition=fields.get("Partition", ""), parent=fields.get("ParentAccount", "").split("(")[0],
            default=fields.get("DefAssoc", "") == "Yes", limits=limits))
    return found


def association_chain(found: list[Association], account: str | None, partition: str) -> list[Association]:
    """The user's association a job runs under (its account, or the default one; its partition's record
    before the general one) and the records of every account above it. Empty: the user has none."""
    mine = [a for a in found if a.user and (a.account == account if account else a.default)]
    mine.sort(key=lambda a: (a.partition != partition, a.partition != ""))
    mine = [a for a in mine if a.partition in (partition, "")][:1]
    accounts = {a.account: a for a in found if not a.user}
    chain, seen = list(mine), set()
    name = mine[0].account if mine else None
    while name and name not in seen and name in accounts:
        seen.add(name)
        chain.append(accounts[name])
        name = accounts[name].parent
    return chain


def site_limits(found: list[Association], account: str | None, partition: str) -> list[SiteLimit]:
    """The tightest limit (least available) on each resource along the job's association chain."""
    tightest: dict[str, SiteLimit] = {}
    for association in association_chain(found, account, partition):
        who = f"user={association.user} " if association.user else ""
        for key, (limit, used, name) in association.limits.items():
            resource = key.split(":")[0]
            candidate = SiteLimit(resource, limit, used,
                                  f"Slurm association {who}account={association.account} {name}")
            if resource not in tightest or candidate.available < tightest[resource].available:
                tightest[resource] = candidate
    return sorted(tightest.values(), key=lambda limit: limit.resource)

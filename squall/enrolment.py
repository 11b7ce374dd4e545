"""Enrolling HPC sites: check, install the runtime, prove it with a health job, unenrol.

Each action applies Squall's roles to the site's login node through
ansible-runner, and always ends in a ``SiteReport`` that is kept in the store
(``site show`` reads it back). Errors become a failed report carrying the exit
code they mean, so ``--output json`` always has a report to print.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from squall.ansible import PlaybookFailed, PlaybookResult, TaskOutcome, run_roles
from squall.errors import ExitCode, InvalidInput, SquallError
from squall.runtime import runtime_path, runtime_sha256, runtime_version, scheduler_commands
from squall.sites.inventories import resolve_site
from squall.sites.transports.ssh_session import check_private_key
from squall.store import Store

ACTIONS = {
    "check": ["squall_site_check"],
    "enrol": ["squall_site_check", "squall_runtime", "squall_health"],
    "health": ["squall_health"],
    "unenrol": ["squall_unenrol"],
}


@dataclass
class SiteReport:
    site: str
    action: str
    status: str = "failed"  # ok or failed
    changed: int = 0
    checks: list[dict] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    runtime: dict | None = None
    health: dict | None = None
    unenrol: dict | None = None
    error: str | None = None
    failed_task: str | None = None
    duration_s: float = 0.0
    exit_code: int = int(ExitCode.JOB_FAILED)

    def to_dict(self) -> dict:
        return asdict(self)


def run_action(
    store: Store,
    home: Path,
    name: str,
    action: str,
    on_task: Callable[[TaskOutcome], None] | None = None,
    runtime_file: Path | None = None,
    rollback: bool = False,
) -> SiteReport:
    """Run one site action; never raises for what a report can say. A ``check`` registers nothing."""
    inventory = resolve_site(store, name, register=action != "check")
    report = SiteReport(site=name, action=action)
    started = time.monotonic()
    try:
        for _, host in inventory.hosts:
            check_private_key(inventory.key_of(host))
        jump = inventory.vars.squall_jump_host
        if jump is not None:
            check_private_key(jump.hop.key, "squall_jump_host.private_key_file")
        extravars = {"squall_scheduler_commands": scheduler_commands(),
                     **(_runtime_vars(runtime_file, rollback) if action == "enrol" else {})}
        roles = ["squall_runtime", "squall_health"] if rollback else ACTIONS[action]
        result = run_roles(roles, list(inventory.layers), home / "known_hosts", extravars, on_task,
                           jump=jump.hop if jump else None)
        _fill(report, result)
        report.status, report.exit_code = "ok", int(ExitCode.OK)
    except PlaybookFailed as exc:
        _fill(report, exc.result)
        report.error, report.failed_task = exc.message, exc.outcome.task
    except SquallError as exc:
        report.error, report.exit_code = exc.message, int(exc.exit_code)
    report.duration_s = round(time.monotonic() - started, 3)
    store.add_site_report(name, action, report.status, report.to_dict())
    return report


def _runtime_vars(runtime_file: Path | None, rollback: bool) -> dict:
    source = (runtime_file or runtime_path()).resolve()
    if not source.is_file():
        raise InvalidInput(f"--runtime-file: {source} does not exist")
    try:
        version = runtime_version(source)
    except ValueError as exc:
        raise InvalidInput(f"--runtime-file: {exc}") from None
    return {
        "squall_runtime_source": str(source),
        "squall_runtime_version": version,
        "squall_runtime_sha256": runtime_sha256(source),
        "squall_runtime_action": "rollback" if rollback else "install",
    }


def _fill(report: SiteReport, result: PlaybookResult) -> None:
    report.changed = result.changed
    check = result.stats.get("squall_site_check_report") or {}
    report.checks = [
        {key: item.get(key) for key in ("name", "status", "value", "hint", "required")}
        for item in check.get("checks", [])
    ]
    report.facts = check.get("facts", {})
    if result.stats.get("squall_site_check_hosts"):  # a site of several machines: what each one has
        report.facts["hosts"] = result.stats["squall_site_check_hosts"]
    report.runtime = result.stats.get("squall_runtime_report")
    report.health = result.stats.get("squall_health_report")
    report.unenrol = result.stats.get("squall_unenrol_report")


def describe_site(store: Store, name: str) -> dict:
    """What Squall knows of a site: its inventory and what enrolment discovered (registers nothing)."""
    from squall.money.site_prices import describe_rates, price_model

    inventory = resolve_site(store, name)
    info = inventory.summary()
    partitions = inventory.vars.squall_partitions or [None]  # an ssh site: its machines, at the site-wide rates
    info["prices"] = {p.name if p else "machines": describe_rates(price_model(inventory.vars, p)) for p in partitions}
    discovered: dict = {}
    for action in ("check", "enrol", "health", "unenrol"):
        last = store.last_site_report(name, action)
        if last:
            discovered[action] = {"status": last[0]["status"], "at": last[1], "report": last[0]}
    latest_check = _latest(discovered, ("check", "enrol"), "facts")
    info["discovered"] = {
        "partitions": latest_check.get("partitions"),
        "gpus": latest_check.get("gres"),
        "slurm_associations": latest_check.get("slurm_associations"),
        "container_runtimes": latest_check.get("container_runtimes"),
        "hosts": latest_check.get("hosts"),
        "python": {"login": latest_check.get("python_login"), "compute": latest_check.get("python_compute")},
        "runtime": _latest(discovered, ("enrol",), "runtime") or None,
        "health": _latest(discovered, ("health", "enrol"), "health") or None,
        "last": {action: {"status": d["status"], "at": d["at"]} for action, d in discovered.items()},
    }
    return info


def _latest(discovered: dict, actions: tuple[str, ...], key: str) -> dict:
    candidates = [d for a, d in discovered.items() if a in actions and d["report"].get(key)]
    if not candidates:
        return {}
    best = max(candidates, key=lambda d: d["at"])
    return {**best["report"][key], "at": best["at"]} if key != "facts" else best["report"][key]

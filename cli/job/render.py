"""How a job result is shown: JSON for machines, a short table for people."""

from __future__ import annotations

import time

from squall.cli.context import App
from squall.cli.tables import print_table
from squall.errors import InvalidInput, NotFound


def show_result(app: App, report) -> int:
    """Print a ``JobReport`` (``squall.reports``); return the exit code its status means."""
    if app.json:
        app.emit(report.data)
    else:
        _show_text(app, report.data, report.isolation)
    return report.exit_code


def _show_text(app: App, data: dict, isolation: str) -> None:
    app.say(f"job {data['id']} ({data['name']}) on {data['site']}: {data['status']}")
    if data["error"]:
        app.say(f"  error: {data['error']}")
    if data.get("hint"):
        app.say(f"  hint: {data['hint']}")
    app.say(f"  results: {data['results']}")
    app.say(f"  cost: {_cost(data['cost'])}")
    app.say(f"  network isolation: {isolation}")
    rows = [[t["index"], t["status"], _or_dash(t["exit_code"]),
             "-" if t["wall_time"] is None else f"{t['wall_time']:.2f}",
             f"{t['max_rss_kb'] // 1024} MiB" if t["max_rss_kb"] else "-", _or_dash(t["outputs"])]
            for t in data["tasks"]]
    print_table(app, ["TASK", "STATUS", "EXIT", "WALL S", "MAX RSS", "OUTPUTS"], rows)
    for t in data["tasks"]:
        if t["status"] != "succeeded" and t["stderr_tail"]:
            app.say(f"  --- task {t['index']} stderr (tail) ---")
            app.say("  " + t["stderr_tail"].rstrip().replace("\n", "\n  "))
    for entry in data.get("journal", []):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["ts"]))
        detail = ", ".join(f"{k}={v}" for k, v in entry["detail"].items() if k != "traceback" and v is not None)
        app.say(f"  {stamp}.{int(entry['ts'] * 1000) % 1000:03d}  {entry['phase']:<8} {entry['event']:<10} {detail}")


def _cost(cost: dict) -> str:
    def money(value: dict | str | None) -> str:
        if value is None:
            return "not settled yet"
        if isinstance(value, str):
            return value
        return "free" if value["currency"] is None else f"{value['amount']} {value['currency']}"

    estimated = cost["estimated"]
    before = money(estimated) if not isinstance(estimated, dict) else \
        f"{money(estimated['likely'])} likely, {money(estimated['max'])} at most"
    after = money(cost["actual"]) + (f", {cost['emissions_gco2e']} gCO2e" if cost["emissions_gco2e"] else "")
    return f"{after} (estimated {before})"


def _or_dash(value: object) -> object:
    return "-" if value is None else value


def load_job(app: App, job_id: str, store=None):
    """The job ``job_id`` names: its whole id, or a prefix of exactly one job's id."""
    store = store or app.store
    job = store.job(job_id)
    if job is not None:
        return job
    matches = store.job_ids_starting(job_id) if job_id else []
    if len(matches) > 1:
        raise InvalidInput(f"job id {job_id!r} is ambiguous: it starts {', '.join(matches[:4])}"
                           f"{' and more' if len(matches) > 4 else ''}", hint="give more of the id")
    if not matches:
        raise NotFound(f"no job with id {job_id!r}", hint="'squall job list' shows the known jobs")
    return store.job(matches[0])

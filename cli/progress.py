"""Progress for people, on stderr: rich bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time

from squall.placement import AUTO, Placement
from squall.job_types import TaskState
from squall.sites.contract import Reporter


class _Managed:
    """Reporters are used as context managers; most need no set-up."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class SilentReporter(_Managed, Reporter):
    pass


class PlainReporter(_Managed, Reporter):
    """One line per phase and per task that finishes; for logs and CI."""

    def __init__(self) -> None:
        self._finished: set[int] = set()

    def admitted(self, placement: Placement, estimate: dict) -> None:
        for line in _admitted(placement, estimate):
            print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)

    def phase(self, job_id: str, phase: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {job_id} {phase}", file=sys.stderr, flush=True)

    def tasks(self, states: list[TaskState]) -> None:
        for state in states:
            if state.final and state.index not in self._finished:
                self._finished.add(state.index)
                print(
                    f"{time.strftime('%H:%M:%S')}   task {state.index} {state.state} (exit {state.exit_code})",
                    file=sys.stderr,
                    flush=True,
                )


class RichReporter(Reporter):
    """Bytes staged and tasks done, as live bars."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True, log_path=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._staging = None
        self._tasks = None

    def __enter__(self) -> "RichReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def admitted(self, placement: Placement, estimate: dict) -> None:
        for line in _admitted(placement, estimate):
            self.console.log(line, markup=False)

    def phase(self, job_id: str, phase: str) -> None:
        self.console.log(f"{job_id} [bold]{phase}[/bold]")

    def bytes_staged(self, done: int, total: int) -> None:
        if not total:  # a job without inputs has nothing to show
            return
        if self._staging is None:
            self._staging = self.progress.add_task("staging", total=total, detail="")
        self.progress.update(self._staging, completed=done, detail=f"{_size(done)} / {_size(total)}")

    def tasks(self, states: list[TaskState]) -> None:
        done = sum(s.final for s in states)
        if self._tasks is None:
            self._tasks = self.progress.add_task("tasks", total=len(states), detail="")
        running = sum(s.state == "running" for s in states)
        self.progress.update(self._tasks, completed=done, detail=f"{done}/{len(states)} done, {running} running")


def _admitted(placement: Placement, estimate: dict) -> list[str]:
    lines = [f"site auto: {placement.site} ({placement.reason})"] if placement.requested == AUTO else []
    return lines + [f"estimate: {describe_estimate(estimate)}"]


def describe_estimate(estimate: dict) -> str:
    """``likely 0.04 credits (at most 0.10), 120 s (at most 600 s), 3.2 gCO2e`` for people."""
    cost = estimate["cost"]
    if cost == "unpriced":
        money = "unpriced"
    else:
        likely, most = cost["likely"], cost["max"]
        money = "free" if likely["currency"] is None else \
            f"{likely['amount']} {likely['currency']} (at most {most['amount']})"
    run = estimate["run_time_s"]
    return f"{money}, {run['likely']} s (at most {run['bound']} s), {estimate['emissions_gco2e']} gCO2e"


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


def reporter_for(quiet: bool) -> Reporter:
    """A context-managed reporter fit for where stderr goes."""
    if quiet:
        return SilentReporter()
    if sys.stderr.isatty():
        return RichReporter()
    return PlainReporter()

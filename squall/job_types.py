"""A job's own types, below every site and the store: what a job plans (``JobPlan``, ``TaskPlan``), what a
site says of a task (``TaskState``, in ``TaskStatus`` values) and what collecting it gave (``CollectedTask``).
The store, money, the lifecycle and every site import them from here, so none of them needs another."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module at start-up; pydantic is slow to load
    from squall.spec import InputFile, JobSpec


AUTO = "auto"  # a spec's or the command line's site "let Squall choose" (placement decides; no site has it)


class TaskStatus(enum.StrEnum):
    """A task's state, as the runtime writes it and the store keeps it."""

    PENDING = "pending"  # not started
    QUEUED = "queued"  # started, waiting for a slot or the scheduler
    RUNNING = "running"
    LOST = "lost"  # its host does not answer: the task's end is unknown (see squall.sites.executors.slots)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED})
RAN = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.TIMEOUT})  # a payload ran to an end
UNFINISHED = frozenset({TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.LOST})


@dataclass(frozen=True)
class TaskPlan:
    index: int
    inputs: tuple[InputFile, ...]


@dataclass(frozen=True)
class JobPlan:
    """Everything a site needs to run a job; rebuilt from the store on resume."""

    job_id: str
    spec: JobSpec
    spec_dir: Path
    script: Path | None
    tasks: tuple[TaskPlan, ...]
    results_dir: Path
    tags: dict[str, str]
    keep_remote: bool = False  # leave the job folder at the site after down (debugging)

    @property
    def walltime(self) -> int:
        return self.spec.resources.walltime_seconds


@dataclass
class TaskState:
    """What a site knows of one task at one poll."""

    index: int
    state: str  # a TaskStatus value
    exit_code: int | None = None
    wall_time: float | None = None
    max_rss_kb: int | None = None
    network_isolated: bool | None = None
    error: str | None = None
    job_error: str | None = None  # something that ends the whole job (its folder vanished at the site)

    @property
    def final(self) -> bool:
        return self.state in FINAL


@dataclass(frozen=True)
class CollectedTask:
    index: int
    files: int
    bytes: int
    error: str | None = None

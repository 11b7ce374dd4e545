"""Who and what a log line is about: the organisation, project, user, job (and task) a controller or a
request acts for, added to every log record as Elastic Common Schema fields while they are bound.

Log lines are written by the CLI's handlers (plain, rich, or ECS JSON with ``--log-format ecs``); the core
only binds what it knows, and logs each journal entry at INFO (``squall.journal``), so that an ECS log
carries the whole lifecycle with its ids.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager
from typing import Iterator

_fields: contextvars.ContextVar[dict] = contextvars.ContextVar("squall_log_fields", default={})

ECS_NAMES = {"org": "organization.id", "project": "labels.project", "user": "user.name", "job": "labels.job_id",
             "task": "labels.task_index"}


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add ``fields`` (org, project, user, job, task) to every record logged meanwhile in this context."""
    token = _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)


class ContextFields(logging.Filter):
    """A handler's filter: the bound fields, as ECS names, on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _fields.get().items():
            setattr(record, ECS_NAMES[key], value)
        return True

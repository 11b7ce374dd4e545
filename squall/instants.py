"""Instants as machines read them: RFC 3339 strings in UTC.

The store keeps epoch seconds (cheap to compare, index and subtract); everything a user or a
script reads — ``--output json``, the results folder's ``report.json`` — carries RFC 3339
strings instead. By convention every field named ``*_at`` is an instant, so one walk over a
report converts them all and a new field cannot slip through as a bare float.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def rfc3339(seconds: float | None) -> str | None:
    """``1764569633.7`` → ``"2025-12-01T06:13:53Z"`` (whole seconds, UTC); ``None`` stays ``None``."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_instants(data: Any) -> Any:
    """``data`` with every numeric ``*_at`` field, at any depth, as an RFC 3339 string."""
    if isinstance(data, dict):
        return {key: rfc3339(value) if _is_instant(key, value) else with_instants(value)
                for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [with_instants(item) for item in data]
    return data


def _is_instant(key: Any, value: Any) -> bool:
    return (isinstance(key, str) and key.endswith("_at") and isinstance(value, (int, float))
            and not isinstance(value, bool))

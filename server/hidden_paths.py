"""The server's own folders never reach a client: answers, errors, logs and events name a job's results by
their URL and the rest of the server's home and spec roots by a placeholder.

Paths reach text in many places (a job's error, a journal entry's detail, a
payload's log, a spec error naming ``--spec-root``), so the server rewrites
what it sends rather than trusting every writer to leave them out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HOME = "<server home>"
SPEC_ROOT = "<spec root>"


class HiddenPaths:
    def __init__(self, home: Path, spec_roots: list[Path]):
        def variants(path: Path) -> set[str]:
            return {str(path), str(path.resolve())}

        # a job's results folder (and anything in it) becomes its results URL, before the home it is under
        self._results = [re.compile(re.escape(home) + r"/server/results/[^/\s'\"]+/([0-9]{6}-[0-9a-f]+)")
                         for home in sorted(variants(home), key=len, reverse=True)]
        plain = [(root, SPEC_ROOT) for path in spec_roots for root in variants(path)]
        plain += [(root, HOME) for root in variants(home)]
        self._plain = sorted(plain, key=lambda pair: len(pair[0]), reverse=True)  # the longest first

    def text(self, value: str) -> str:
        for pattern in self._results:
            value = pattern.sub(r"/api/v1/jobs/\1/results", value)
        for path, placeholder in self._plain:
            value = value.replace(path, placeholder)
        return value

    def hide(self, value: Any) -> Any:
        """``value`` (strings, lists and dicts, as deep as they go) with the server's paths replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.hide(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.hide(item) for item in value]
        return value

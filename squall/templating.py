"""The project's Jinja2 templates (templates/): one environment, strict about undefined values."""

from __future__ import annotations

import shlex
from functools import cache

from squall.project import project_dir


@cache
def templates():
    """Templates are code, not HTML: no autoescape; ``shquote`` quotes a value for a shell."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(project_dir() / "templates")),
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["shquote"] = shlex.quote
    return env

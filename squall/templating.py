"""The project's Jinja2 templates (templates/): one environment, strict about undefined values."""

from __future__ import annotations

import re
import shlex
from functools import cache

from squall.errors import InvalidInput
from squall.project import project_dir

# A batch-script directive ends at a newline and splits at spaces: its values get no shell quoting, so they
# must be plain words.
_DIRECTIVE_VALUE = re.compile(r"^[A-Za-z0-9_.,=:/@%+-]+$")


def directive(value: object) -> str:
    """``value`` for a ``#SBATCH`` line, or ``InvalidInput`` if it could end the line or split it."""
    text = str(value)
    if not _DIRECTIVE_VALUE.fullmatch(text):
        raise InvalidInput(f"{text!r} cannot be written into a batch-script directive",
                           hint="use letters, digits and _ . , = : / @ % + - only")
    return text


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
    env.filters["directive"] = directive
    return env

"""Tables for people: rich tables with a header, cells shown as plain text (no markup, no control characters)."""

from __future__ import annotations

import sys

from squall.cli.context import App


def printable(value: object) -> str:
    """A cell's text: what it says, with line breaks and other control characters shown as '�'."""
    return "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in str(value))


def print_table(app: App, headers: list[str], rows: list[list[object]]) -> None:
    """On a terminal the table fits its width (long cells fold); piped, nothing is folded or cut."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if app.quiet:
        return
    table = Table(box=None, pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(printable(cell)) for cell in row))
    Console(width=None if sys.stdout.isatty() else 10_000).print(table)

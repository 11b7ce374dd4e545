"""``squall job schema``"""

from __future__ import annotations

import json

import click


@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of job specs."""
    from squall.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2))

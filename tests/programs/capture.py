"""Capture helpers for the tests: a stack file's graph under mocks (``squall.programs.offline``)."""

from __future__ import annotations

import yaml

from squall.programs.offline import Graph, evaluate  # noqa: F401 - re-exported for the tests
from squall.programs.stack_files import stack_file
from squall.programs.stacks import run_configured


def stack_config(stack: str) -> dict[str, object]:
    """Every config key of ``stacks/Pulumi.<stack>.yaml`` (provider keys too), as Pulumi would pass them."""
    return dict(yaml.safe_load(stack_file(stack).read_text())["config"])


def evaluate_stack(stack: str, **squall: object) -> Graph:
    """``Pulumi.yaml``'s own entry point over a stack file, with some ``squall:`` keys overridden."""
    config = {**stack_config(stack), **{f"squall:{key}": value for key, value in squall.items()}}
    return evaluate(run_configured, config, stack=stack)

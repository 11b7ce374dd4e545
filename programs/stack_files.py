"""Reading ``stacks/Pulumi.<stack>.yaml``: the stack configs an operator edits.

Pulumi itself reads these when it runs ``Pulumi.yaml``; the Automation API's
``LocalWorkspace`` ignores ``stackConfigDir``, and the offline tests feed the
mocks from them, so both go through here. Stack names are ``<org>.<kind>.<name>``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from squall.errors import InvalidInput, NotFound
from squall.programs.settings import JobStackConfig, OrgStackConfig, load_settings
from squall.project import project_dir

PREFIX = "squall:"


def stacks_dir() -> Path:
    return project_dir() / "stacks"


def stack_file(stack: str, directory: Path | None = None) -> Path:
    return (directory or stacks_dir()) / f"Pulumi.{stack}.yaml"


def squall_config(stack: str, directory: Path | None = None) -> dict:
    """The ``squall:`` keys of a stack file, without the prefix."""
    path = stack_file(stack, directory)
    if not path.is_file():
        raise NotFound(f"stack {stack}: no {path}")
    try:
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML ({exc})") from None
    return {key[len(PREFIX):]: value for key, value in config.items() if key.startswith(PREFIX)}


def resolve(raw: dict, source: str, directory: Path | None = None) -> OrgStackConfig | JobStackConfig:
    """Validated settings; a job stack may name its organisation's stack (``org_stack``) instead of
    repeating the organisation spec."""
    raw = dict(raw)
    kind = str(raw.pop("kind", ""))
    org_stack = raw.pop("org_stack", None)
    if org_stack is not None and "org" not in raw:
        org_config = squall_config(str(org_stack), directory)
        raw["org"] = org_config.get("org")
        raw.setdefault("controller_public_key", org_config.get("controller_public_key"))
    return load_settings(kind, raw, source)


def load_stack(stack: str, directory: Path | None = None) -> OrgStackConfig | JobStackConfig:
    return resolve(squall_config(stack, directory), stack_file(stack, directory).name, directory)

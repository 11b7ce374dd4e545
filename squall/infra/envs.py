"""CI environments: ``squall env up NAME --config FILE`` and ``squall env down NAME`` for pipelines.

An environment is an organisation stack named ``<org>.env.<NAME>``, built from
a stack file in the ``stacks/`` format. ``up`` keeps a frozen copy of that file
under the Squall home, so ``down`` needs only the name, and records an expiry
so ``squall gc`` destroys environments a pipeline forgot. Both are idempotent;
the CLI holds a per-stack lock around them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from squall.errors import InvalidInput
from squall.infra import records
from squall.infra.driver import Engine, OnEvent, StackName
from squall.infra.orgs import Orgs
from squall.programs.settings import OrgStackConfig
from squall.programs.stack_files import resolve
from squall.store import Store


class Envs:
    def __init__(self, store: Store, engine: Engine, home: Path):
        self.store, self.engine = store, engine
        self.directory = home / "envs"

    def find(self, name: str) -> StackName | None:
        for record in records.stacks(self.store, kind="env"):
            stack = StackName.parse(record.name)
            if stack.name == name:
                return stack
        return None

    def stack_for(self, name: str, config_file: Path) -> tuple[StackName, dict]:
        """The environment's stack name and its stack file's contents, validated before anything runs."""
        try:
            document = yaml.safe_load(config_file.read_text())
        except OSError as exc:
            raise InvalidInput(f"--config {config_file}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise InvalidInput(f"--config {config_file}: not valid YAML ({exc})") from None
        config = (document or {}).get("config") if isinstance(document, dict) else None
        if not isinstance(config, dict):
            raise InvalidInput(f"--config {config_file}: expected a stack file with a 'config:' mapping")
        raw = {key[len("squall:"):]: value for key, value in config.items() if key.startswith("squall:")}
        if raw.get("kind") != "org":
            raise InvalidInput(f"--config {config_file}: squall:kind must be org for an environment")
        settings = resolve(raw, str(config_file))
        assert isinstance(settings, OrgStackConfig)
        stack = StackName(settings.org.org, "env", name)
        existing = self.find(name)
        if existing is not None and existing != stack:
            raise InvalidInput(f"environment {name} already belongs to {existing}; bring that one down first")
        return stack, document

    def up(self, stack: StackName, document: dict, ttl_hours: float, on_event: OnEvent) -> dict[str, Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        frozen = self.directory / f"Pulumi.{stack}.yaml"
        partial = frozen.with_suffix(".partial")
        partial.write_text(yaml.safe_dump(document, sort_keys=False))
        partial.replace(frozen)
        expires = time.time() + ttl_hours * 3600
        records.save_stack(self.store, str(stack), stack.org, stack.kind, "updating", expires_at=expires)
        outputs = Orgs(self.store, self.engine, self.directory).up(stack, on_event)
        return {"env": stack.name, "stack": str(stack), "state": "up", "outputs": outputs, "expires_at": expires}

    def down(self, name: str, on_event: OnEvent) -> dict[str, Any]:
        stack = self.find(name)
        record = records.stack(self.store, str(stack)) if stack else None
        if stack is None or record is None or record.state == "destroyed":
            return {"env": name, "stack": str(stack) if stack else None, "state": "absent"}
        Orgs(self.store, self.engine, self.directory).down(stack, on_event)
        return {"env": name, "stack": str(stack), "state": "destroyed"}

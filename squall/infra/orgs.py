"""Organisations: preview, up, down and status of an ``<org>.org.<name>`` stack, and pool scaling.

The spec comes from ``stacks/Pulumi.<org>.org.<name>.yaml`` (the operator's
file); what Squall changes later (pool sizes, bank slots) is kept as overrides
in the store and passed to the program on every run, so the file is never
rewritten. Every action is journaled before and after it runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from squall.errors import InvalidInput
from squall.infra import records
from squall.infra.driver import Engine, OnEvent, StackConfig, StackName, require_sdks
from squall.programs.design import ClusterDesign, design, resize
from squall.programs.settings import OrgStackConfig
from squall.programs.stack_files import load_stack, stack_file
from squall.store import Store

OVERRIDE_KEYS = ("pool_sizes", "bank_sizes", "bank_slots", "bank_claimed")


def provider_config(stack: StackName, directory: Path | None = None) -> StackConfig:
    """The stack file's provider keys (``aws:region`` …): everything not under ``squall:``.

    A credential is never written in the file: ``key: {secret_env: VAR}`` takes it
    from the environment and hands it to Pulumi as a secret (encrypted with the
    passphrase in the stack's state)."""
    import yaml

    config = yaml.safe_load(stack_file(str(stack), directory).read_text()).get("config") or {}
    values, secrets = {}, {}
    for key, value in config.items():
        if key.startswith("squall:"):
            continue
        if isinstance(value, dict) and set(value) == {"secret_env"}:
            variable = str(value["secret_env"])
            if variable not in os.environ:
                raise InvalidInput(f"stack {stack}: {key} comes from ${variable}, which is not set")
            secrets[key] = os.environ[variable]
        else:
            values[key] = str(value)
    return StackConfig(values, secrets)


def cluster_of(settings: OrgStackConfig) -> ClusterDesign:
    """The design with the stack's sizes and slots applied (what the program will declare)."""
    return resize(design(settings.org), settings.pool_sizes, settings.bank_sizes, settings.bank_slots,
                  settings.bank_claimed)


def org_program(settings: OrgStackConfig):
    """The inline program: the very function ``Pulumi.yaml`` runs for ``squall:kind: org``."""

    def program() -> None:
        from squall.programs.stacks import org_program as run

        run(settings)
    return program


class Orgs:
    def __init__(self, store: Store, engine: Engine, stacks_dir: Path | None = None):
        self.store, self.engine, self.stacks_dir = store, engine, stacks_dir

    def settings(self, stack: StackName, overrides: dict[str, Any] | None = None) -> OrgStackConfig:
        """The stack file's settings with the stored overrides (and ``overrides``) applied, validated."""
        loaded = load_stack(str(stack), self.stacks_dir)
        if not isinstance(loaded, OrgStackConfig):
            raise InvalidInput(f"stack {stack}: squall:kind is not org")
        record = records.stack(self.store, str(stack))
        merged = {**(record.overrides if record else {}), **(overrides or {})}
        settings = loaded.model_copy(update={**{k: v for k, v in merged.items() if k in OVERRIDE_KEYS},
                                             "store": self.store.store_id})
        cluster_of(settings)  # refuses impossible sizes before anything runs
        return settings

    def preview(self, stack: StackName, on_event: OnEvent) -> dict[str, int]:
        settings = self.settings(stack)
        require_sdks(settings.org.cloud)
        return self.engine.preview(stack, org_program(settings), provider_config(stack, self.stacks_dir), on_event)

    def up(self, stack: StackName, on_event: OnEvent, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Apply the organisation; ``overrides`` are stored only once the update succeeded."""
        settings = self.settings(stack, overrides)
        require_sdks(settings.org.cloud)
        name = str(stack)
        self.store.record(None, "stack", "up", stack=name)
        records.save_stack(self.store, name, stack.org, stack.kind, "updating")
        try:
            outputs = self.engine.up(stack, org_program(settings), provider_config(stack, self.stacks_dir), on_event)
        except BaseException as exc:
            records.save_stack(self.store, name, stack.org, stack.kind, "failed")
            self.store.record(None, "stack", "up-failed", stack=name, error=str(exc)[:500])
            raise
        kept = {key: getattr(settings, key) for key in OVERRIDE_KEYS if getattr(settings, key)}
        records.save_stack(self.store, name, stack.org, stack.kind, "up", outputs=outputs, overrides=kept)
        self.store.record(None, "stack", "up-done", stack=name)
        return outputs

    def down(self, stack: StackName, on_event: OnEvent) -> None:
        self.settings(stack)  # an organisation without a stack file is the user's mistake: said before the engine
        name = str(stack)
        self.store.record(None, "stack", "down", stack=name)
        records.save_stack(self.store, name, stack.org, stack.kind, "destroying")
        try:
            self.engine.destroy(stack, on_event)
        except BaseException as exc:
            records.save_stack(self.store, name, stack.org, stack.kind, "failed")
            self.store.record(None, "stack", "down-failed", stack=name, error=str(exc)[:500])
            raise
        records.save_stack(self.store, name, stack.org, stack.kind, "destroyed", outputs={})
        self.store.record(None, "stack", "down-done", stack=name)

    def status(self, stack: StackName) -> dict[str, Any]:
        settings = self.settings(stack)
        cluster = cluster_of(settings)
        record = records.stack(self.store, str(stack))
        deployed = record is not None and record.state not in ("destroyed",)
        return {
            "stack": str(stack), "cloud": settings.org.cloud, "state": record.state if record else "never-deployed",
            "updated_at": record.updated_at if record else None, "outputs": record.outputs if record else {},
            "pools": {p.spec.name: {"min": p.spec.min, "desired": p.spec.desired, "max": p.spec.max}
                      for p in cluster.pools},
            # VMs exist only once the organisation is deployed: a never-deployed one has none to show
            "banks": {b.spec.name: {"target": b.spec.idle_target, "slots": list(b.slots) if deployed else []}
                      for b in cluster.banks},
        }

    def scale(self, stack: StackName, pool: str, size: int, on_event: OnEvent) -> dict[str, Any]:
        """Set a pool's desired size (0 allowed) and apply it."""
        current = self.settings(stack)
        return self.up(stack, on_event, {"pool_sizes": {**current.pool_sizes, pool: size}})

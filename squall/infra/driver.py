"""The stack driver: Squall's programs run inline through Pulumi's Automation API.

The same program functions ``Pulumi.yaml`` runs (``squall.programs.stacks``)
are handed to ``pulumi.automation`` as inline programs. State goes to a local
file backend under the Squall home unless ``--backend``/``$SQUALL_PULUMI_BACKEND``
says otherwise, so no Pulumi account is needed; secrets use the passphrase
provider, the passphrase coming from ``$SQUALL_PULUMI_PASSPHRASE``. The Pulumi
CLI is required and never downloaded: without it every operation fails with
exit 3 and how to install it.

``Engine`` is the boundary: ``AutomationEngine`` is the real one; tests stand
in a recording double here, nowhere else.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Protocol

from squall.errors import InvalidInput, MissingDependency, SquallError

PROJECT = "squall"
BACKEND_ENV = "SQUALL_PULUMI_BACKEND"
PASSPHRASE_ENV = "SQUALL_PULUMI_PASSPHRASE"
COMMAND_ENV = "SQUALL_PULUMI_COMMAND"  # a pulumi binary elsewhere than on PATH
INSTALL_HINT = ("install the Pulumi CLI (https://www.pulumi.com/docs/install/) and put it on PATH, or set "
                f"{COMMAND_ENV} to its path; Squall never downloads it")
KINDS = ("org", "job", "env")

Program = Callable[[], None]
OnEvent = Callable[[str], None]


@dataclass(frozen=True)
class StackName:
    """``<org>.<kind>.<name>``: whose stack, what kind, which one."""

    org: str
    kind: str
    name: str

    def __post_init__(self) -> None:
        for part, value in (("org", self.org), ("name", self.name)):
            if not value or "." in value or "/" in value:
                raise InvalidInput(f"stack {part} {value!r}: must be non-empty, without '.' or '/'")
        if self.kind not in KINDS:
            raise InvalidInput(f"stack kind {self.kind!r}: one of {', '.join(KINDS)}")

    def __str__(self) -> str:
        return f"{self.org}.{self.kind}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> "StackName":
        parts = text.split(".")
        if len(parts) != 3:
            raise InvalidInput(f"stack {text!r}: expected <org>.<kind>.<name>")
        return cls(*parts)


@dataclass(frozen=True)
class StackConfig:
    """Provider config for a stack (``aws:region`` …); secret values are encrypted with the passphrase."""

    values: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


class Engine(Protocol):
    def preview(self, stack: StackName, program: Program, config: StackConfig, on_event: OnEvent) -> dict[str, int]:
        """Planned changes by operation (create, update, delete, same)."""
        ...

    def up(self, stack: StackName, program: Program, config: StackConfig, on_event: OnEvent) -> dict[str, Any]:
        """Apply; returns the stack's outputs."""
        ...

    def destroy(self, stack: StackName, on_event: OnEvent) -> None:
        """Delete every resource, then the stack itself. A stack that does not exist is already destroyed."""
        ...

    def outputs(self, stack: StackName) -> dict[str, Any] | None:
        """The outputs of a stack, or None when there is no such stack."""
        ...

    def stacks(self) -> list[str]:
        """Every stack name in the backend."""
        ...

    def check(self) -> None:
        """Raise ``MissingDependency`` (exit 3) if this engine cannot run any operation here."""
        ...


def require_sdks(cloud: str | None = None) -> None:
    """The Pulumi SDK (and ``cloud``'s provider SDK), or MissingDependency (exit 3) naming the extra."""
    import importlib.util

    for module in ("pulumi", *([f"pulumi_{cloud}"] if cloud else [])):
        if importlib.util.find_spec(module) is None:
            raise MissingDependency(f"{cloud or 'cloud'} stacks need the Python package {module.replace('_', '-')}",
                                    hint=f"pip install 'squall[{cloud or 'all'}]'")


def _automation():
    require_sdks()
    from pulumi import automation

    return automation


def default_backend(home: Path) -> str:
    return os.environ.get(BACKEND_ENV) or (home / "pulumi").resolve().as_uri()


def pulumi_binary() -> str:
    """The Pulumi CLI to use, or MissingDependency (exit 3) with the install hint."""
    configured = os.environ.get(COMMAND_ENV)
    found = configured if configured and os.access(configured, os.X_OK) else shutil.which("pulumi")
    if not found:
        raise MissingDependency("the pulumi CLI is not installed (cloud stacks need it)", hint=INSTALL_HINT)
    return found


class AutomationEngine:
    """``Engine`` over ``pulumi.automation``: one LocalWorkspace per stack, inline programs."""

    def __init__(self, home: Path, backend: str | None = None):
        self.home = home
        self.backend = backend or default_backend(home)

    @cached_property
    def binary(self) -> str:
        """Looked up at the first operation, so bad input is reported before a missing CLI."""
        found = pulumi_binary()
        if self.backend.startswith("file://"):
            Path(self.backend[len("file://"):]).mkdir(parents=True, exist_ok=True)
        return found

    def check(self) -> None:
        self.binary  # noqa: B018 - the lookup raises MissingDependency when the CLI is absent

    def _environment(self, config: StackConfig) -> dict[str, str]:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if config.secrets and not passphrase:
            raise MissingDependency(
                f"secret config ({', '.join(sorted(config.secrets))}) needs a passphrase to encrypt it",
                hint=f"export {PASSPHRASE_ENV}=... (keep it; the same one decrypts the stack later)")
        return {"PULUMI_BACKEND_URL": self.backend, "PULUMI_CONFIG_PASSPHRASE": passphrase or "",
                "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_HOME": str(self.home / "pulumi-home")}

    def _options(self, config: StackConfig):
        auto = _automation()

        command = auto.PulumiCommand(root=str(Path(self.binary).parent.parent), skip_version_check=True)
        return auto.LocalWorkspaceOptions(
            work_dir=str(self._work_dir()), env_vars=self._environment(config), secrets_provider="passphrase",
            pulumi_command=command,
            project_settings=auto.ProjectSettings(name=PROJECT, runtime="python",
                                                  backend=auto.ProjectBackend(url=self.backend)))

    def _stack(self, stack: StackName, program: Program | None, config: StackConfig, create: bool = True):
        auto = _automation()

        try:
            options = self._options(config)
            if create:
                handle = auto.create_or_select_stack(str(stack), project_name=PROJECT,
                                                     program=program or (lambda: None), opts=options)
            else:
                handle = auto.select_stack(str(stack), project_name=PROJECT,
                                           program=program or (lambda: None), opts=options)
        except FileNotFoundError:
            raise MissingDependency("the pulumi CLI is not installed (cloud stacks need it)",
                                    hint=INSTALL_HINT) from None
        except auto.StackNotFoundError:
            return None
        except auto.CommandError as exc:
            raise SquallError(f"pulumi: {_first_error(exc)}") from None
        if config.values or config.secrets:
            handle.set_all_config({**{k: auto.ConfigValue(v) for k, v in config.values.items()},
                                   **{k: auto.ConfigValue(v, secret=True) for k, v in config.secrets.items()}})
        return handle

    def _work_dir(self) -> Path:
        path = self.home / "pulumi-work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def preview(self, stack: StackName, program: Program, config: StackConfig, on_event: OnEvent) -> dict[str, int]:
        handle = self._stack(stack, program, config)
        result = self._run(lambda: handle.preview(on_event=_events(on_event), color="never"))
        return {str(op): count for op, count in (result.change_summary or {}).items()}

    def up(self, stack: StackName, program: Program, config: StackConfig, on_event: OnEvent) -> dict[str, Any]:
        handle = self._stack(stack, program, config)
        result = self._run(lambda: handle.up(on_event=_events(on_event), color="never"))
        return {key: value.value for key, value in result.outputs.items()}

    def destroy(self, stack: StackName, on_event: OnEvent) -> None:
        handle = self._stack(stack, None, StackConfig(), create=False)
        if handle is None:
            return
        self._run(lambda: handle.destroy(on_event=_events(on_event), color="never"))
        self._run(lambda: handle.workspace.remove_stack(str(stack)))

    def outputs(self, stack: StackName) -> dict[str, Any] | None:
        handle = self._stack(stack, None, StackConfig(), create=False)
        if handle is None:
            return None
        return {key: value.value for key, value in self._run(handle.outputs).items()}

    def stacks(self) -> list[str]:
        auto = _automation()

        try:
            workspace = auto.LocalWorkspace(**vars(self._options(StackConfig())))
        except FileNotFoundError:
            raise MissingDependency("the pulumi CLI is not installed (cloud stacks need it)",
                                    hint=INSTALL_HINT) from None
        return [summary.name for summary in self._run(workspace.list_stacks)]

    @staticmethod
    def _run(action: Callable[[], Any]) -> Any:
        auto = _automation()

        try:
            return action()
        except auto.CommandError as exc:
            raise SquallError(f"pulumi: {_first_error(exc)}") from None


def _first_error(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or ["failed"])[0][:500]


def _events(on_event: OnEvent) -> Callable[[Any], None]:
    """Engine events as one-line progress messages (resource, operation)."""

    def handle(event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        done = getattr(event, "res_outputs_event", None)
        failed = getattr(event, "res_op_failed_event", None)
        for step, verb in ((pre, "…"), (done, "done"), (failed, "FAILED")):
            if step is not None and step.metadata is not None:
                metadata = step.metadata
                operation = getattr(metadata.op, "value", metadata.op)
                on_event(f"{operation} {metadata.type} {metadata.urn.rsplit('::', 1)[-1]} {verb}")
    return handle


def engine_for(home: Path, backend: str | None = None) -> Engine:
    """The engine the CLI drives stacks with (tests replace this one function with their double)."""
    return AutomationEngine(home, backend)

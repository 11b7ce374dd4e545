"""A user's defaults: ``$XDG_CONFIG_HOME/squall/config.yaml`` (or ``--config``), and the environment.

Each setting has a config key and an environment variable; what decides a value,
first to last: the command-line option, the environment variable, the config
file, then the built-in default. ``site`` and ``project`` are defaults for jobs:
a spec that names its own site or project keeps it (``--site`` still beats all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

from squall.errors import InvalidInput
from squall.slugs import SLUG, SLUG_HINT

CONFIG_ENV = "SQUALL_CONFIG"


@dataclass(frozen=True)
class Setting:
    key: str
    env: str
    default: str | None

    def check(self, value: str, source: str) -> str:
        """The same rules for a value from the environment as from the config file."""
        if not value:
            raise InvalidInput(f"{source}: is set but empty", hint=f"give a {self.key}, or unset it")
        if self.key in ("org", "project", "user") and not SLUG.fullmatch(value):
            raise InvalidInput(f"{source}: {value!r} is not a valid {self.key} name", hint=SLUG_HINT)
        if self.key == "output" and value not in ("text", "json"):
            raise InvalidInput(f"{source}: {value!r} is not an output format", hint="text or json")
        return value


SETTINGS = (
    Setting("site", "SQUALL_SITE", "local"),
    Setting("results", "SQUALL_RESULTS", "squall-results"),
    Setting("org", "SQUALL_ORG", "default"),
    Setting("project", "SQUALL_PROJECT", "default"),
    Setting("backend", "SQUALL_PULUMI_BACKEND", None),  # None: a file backend under the Squall home
    Setting("output", "SQUALL_OUTPUT", "text"),
    Setting("user", "SQUALL_USER", None),  # None: the login name
)


@dataclass(frozen=True)
class Value:
    value: str | None
    source: str  # "$SQUALL_SITE", "<path>: site", or "default"


def _user_config_model():
    """The config file's schema (pydantic is loaded only when there is a file to check)."""
    from pydantic import Field

    from squall.validation import StrictModel

    class UserConfig(StrictModel):
        site: str | None = Field(None, min_length=1, description="site for jobs whose spec names none")
        results: str | None = Field(None, min_length=1, description="folder that receives job results")
        org: str | None = Field(None, description="organisation jobs are tagged with")
        project: str | None = Field(None, description="project for jobs whose spec names none")
        backend: str | None = Field(None, min_length=1, description="Pulumi state backend URL")
        output: Literal["text", "json"] | None = Field(None, description="text or json")
        user: str | None = Field(None, description="who submits jobs (usage records, quotas)")
        notify: dict[str, list[str]] | None = Field(None, description="apprise URLs per project ('*': all)")
        partners: dict[str, list[str]] | None = Field(None, description="apprise URLs per partner")

    return UserConfig


def default_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "squall" / "config.yaml"


def load_user_config(explicit: str | None, environ: Mapping[str, str] = os.environ) -> tuple[dict, Path]:
    """The config file named by ``--config`` or ``$SQUALL_CONFIG`` (which must exist), else the default one
    (which may not); every key checked, errors naming the file and the key."""
    chosen = explicit or environ.get(CONFIG_ENV)
    path = Path(chosen).expanduser() if chosen else default_config_path(environ)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if chosen:
            source = "--config" if explicit else f"${CONFIG_ENV}"
            raise InvalidInput(f"{source}: {path} does not exist",
                               hint="create it, or leave it out to use " + str(default_config_path(environ)))
        return {}, path
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"config file {path}: cannot read it: {exc}") from None
    from squall.spec import load_yaml
    from squall.validation import validate

    raw = load_yaml(text, str(path))
    if raw is None:  # an empty file
        return {}, path
    config = validate(_user_config_model(), raw, str(path), "Squall config file").model_dump(exclude_none=True)
    for setting in SETTINGS:
        if setting.key in config:
            setting.check(config[setting.key], f"{path}: {setting.key}")
    if "results" in config:
        config["results"] = os.path.expanduser(config["results"])
    return config, path


class Defaults:
    """Each setting's value for this command, with where it came from."""

    def __init__(self, config: dict, path: Path, environ: Mapping[str, str] = os.environ):
        self.config = config  # the file's own keys, notification targets included
        self.values: dict[str, Value] = {}
        for setting in SETTINGS:
            if setting.env in environ:
                value = Value(setting.check(environ[setting.env], f"${setting.env}"), f"${setting.env}")
            elif setting.key in config:
                value = Value(config[setting.key], f"{path}: {setting.key}")
            else:
                value = Value(setting.default, "default")
            self.values[setting.key] = value

    @classmethod
    def builtin(cls) -> "Defaults":
        return cls({}, Path(), {})

    @classmethod
    def load(cls, explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> "Defaults":
        return cls(*load_user_config(explicit, environ), environ)

    def __getitem__(self, key: str) -> Value:
        return self.values[key]

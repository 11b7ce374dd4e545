"""The job spec: a YAML file validated with pydantic, then resolved on disk.

Every error names its field path (``resources.cpus``, ``inputs[2]``) and an
unknown key gets a "did you mean" hint, because specs are written by hand.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from squall.errors import InvalidInput
from squall.slugs import SLUG_PATTERN
from squall.slurm_options import SlurmOptions
from squall.validation import StrictModel, validate

_MEMORY = re.compile(r"^(\d{1,12}(?:\.\d{1,6})?)\s*([KMGT]?)(i?B?)$", re.IGNORECASE)
# Slurm's wall-time forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_WALLTIME_DAYS = re.compile(r"^(\d{1,4})-(\d{1,2})(?::(\d{1,2})(?::(\d{1,2}))?)?$")
_WALLTIME_CLOCK = re.compile(r"^(\d{1,7})(?::(\d{1,2})(?::(\d{1,2}))?)?$")
WALLTIME_FORMS = "'MM', 'MM:SS', 'HH:MM:SS', 'D-HH', 'D-HH:MM' or 'D-HH:MM:SS' (Slurm's forms)"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
MAX_MEMORY = 1 << 50  # 1 PiB per task: beyond any node, and far inside what every site's tools can hold
MAX_WALLTIME = 365 * 24 * 3600  # a year: Slurm's limits, lease expiries and timestamps all hold it
MAX_SPEC_BYTES = 1 << 20

ContainerRuntime = Literal["auto", "apptainer", "singularity", "podman", "docker", "none"]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


def parse_memory(text: str) -> int:
    """``"2G"`` -> bytes; units are binary (as Slurm reads them)."""
    match = _MEMORY.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size like '512M' or '2G'")
    number, unit, _ = match.groups()
    size = int(float(number) * _UNITS[unit.upper()])
    if size > MAX_MEMORY:
        raise ValueError(f"{text!r} is more than 1 PiB")
    return size


def parse_walltime(text: str) -> int:
    """A wall time in any of Slurm's forms -> seconds; a field out of range (``25:61:00``) is refused."""
    text = text.strip()
    days_form, clock_form = _WALLTIME_DAYS.match(text), _WALLTIME_CLOCK.match(text)
    if days_form:
        days, hours, minutes, seconds = (int(g or 0) for g in days_form.groups())
        limits = (("hours", hours, 24), ("minutes", minutes, 60), ("seconds", seconds, 60))
    elif clock_form:
        fields = [int(g) for g in clock_form.groups() if g is not None]
        # MM or MM:SS: the first field counts minutes, as Slurm reads it
        days, hours, minutes, seconds = (0, *fields) if len(fields) == 3 else (0, 0, fields[0], (fields + [0])[1])
        limits = (("minutes", minutes, 60 if len(fields) == 3 else None), ("seconds", seconds, 60))
    else:
        raise ValueError(f"{text!r} is not a wall time like '00:10:00' or '1-00:00:00'; write {WALLTIME_FORMS}")
    for name, value, limit in limits:
        if limit is not None and value >= limit:
            raise ValueError(f"{text!r}: {value} {name} is out of range (below {limit})")
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total > MAX_WALLTIME:
        raise ValueError(f"{text!r} is more than 365 days")
    return total


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


NoNul = Annotated[str, AfterValidator(_no_nul)]


def _check_relative(pattern: str, what: str) -> str:
    if not pattern or "\0" in pattern or "\n" in pattern:
        raise ValueError(f"{what} must be a non-empty path on one line")
    path = PurePosixPath(pattern)
    if path.is_absolute():
        raise ValueError(f"{pattern!r} is absolute; {what} must be relative")
    if ".." in path.parts:
        raise ValueError(f"{pattern!r} reaches outside its folder through '..'")
    return pattern


# An image shipped as a file next to the spec (no registry needed): loaded once per site, cached by digest.
IMAGE_ARCHIVE = re.compile(r"^(oci-archive|docker-archive):(.+)$")

InputPattern = Annotated[str, AfterValidator(lambda v: _check_relative(v, "an input"))]
OutputGlob = Annotated[str, AfterValidator(lambda v: _check_relative(v, "an output glob"))]


class Resources(StrictModel):
    """What one task needs."""

    cpus: int = Field(1, ge=1, le=1024, description="CPU cores per task (per rank of a multi-rank task)")
    memory: str | None = Field(None, description="memory per task on each of its nodes, e.g. '512M', '2G'")
    gpus: int = Field(0, ge=0, le=64, description="GPUs per task on each of its nodes")
    nodes: int = Field(1, ge=1, le=1024, description="nodes per task (Slurm sites)")
    tasks_per_node: int = Field(1, ge=1, le=1024, description="processes (MPI ranks) per node of a task")
    walltime: str = Field("01:00:00", description="Slurm's forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, "
                                                  "D-HH:MM:SS; the task is killed after it")

    @property
    def cpus_per_node(self) -> int:
        return self.cpus * self.tasks_per_node

    @property
    def multi_rank(self) -> bool:
        """The task is more than one process: a launcher (srun) starts it."""
        return self.nodes > 1 or self.tasks_per_node > 1

    @field_validator("memory", "walltime", mode="before")
    @classmethod
    def _units_named(cls, value: object, info) -> object:
        """A bare number has no unit: say which forms are accepted instead of "should be a string"."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if info.field_name == "memory":
                raise ValueError(f"{value} has no unit: write a size as a string with K, M, G or T "
                                 f"(binary, as Slurm reads them), e.g. '{value}M' or '2G'")
            raise ValueError(f"{value} is a number: write a wall time as a string, {WALLTIME_FORMS}, "
                             "e.g. '01:00:00'")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and parse_memory(value) <= 0:
            raise ValueError("memory must be positive")
        return value

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value: str) -> str:
        if parse_walltime(value) <= 0:
            raise ValueError("walltime must be positive")
        return value

    @property
    def memory_bytes(self) -> int | None:
        return parse_memory(self.memory) if self.memory else None

    @property
    def walltime_seconds(self) -> int:
        return parse_walltime(self.walltime)


class Service(StrictModel):
    """A partner's application, paid with the job at the price its registration says (P_ZOP): a spec names
    the service, never its price (``squall service set``)."""

    partner: Slug

    @model_validator(mode="before")
    @classmethod
    def _no_price(cls, data: Any) -> Any:
        if isinstance(data, dict) and "price" in data:
            raise ValueError("service.price: a service's price comes from its registration ('squall service set "
                             "PARTNER --price ...'), never from the spec: drop 'price'")
        return data


class JobSpec(StrictModel):
    """A Squall job: a payload, its inputs split over N tasks, and what to bring back."""

    name: str = Field(min_length=1, max_length=128)
    command: list[NoNul] | NoNul | None = Field(
        None, description="argv list, or a string run by /bin/sh -c"
    )
    script: str | None = Field(None, description="path of a script, relative to the spec")
    image: str | None = Field(None, description="container image to run the payload in")
    runtime: ContainerRuntime = Field("none", description="container runtime for `image`")
    inputs: list[InputPattern] = Field(default_factory=list, description="files or globs, relative")
    split: int = Field(1, ge=1, le=10000, description="number of tasks")
    resources: Resources = Field(default_factory=Resources)
    mpi: bool = Field(False, description="start the task's processes with the site's MPI launcher (Slurm: "
                                         "srun --mpi=pmix)")
    outputs: list[OutputGlob] = Field(
        default_factory=lambda: ["**/*"], description="globs under each task's output dir"
    )
    site: str = Field("local", min_length=1, description="site name, or 'auto'")
    project: Slug = "default"
    service: Service | None = Field(None, description="a registered partner application, paid with the job at "
                                                       "its registered price")
    slurm: SlurmOptions | None = Field(None, description="Slurm sites: account, qos, constraint, reservation and "
                                                         "allowed extra sbatch options (ignored elsewhere)")
    labels: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]{0,62}$")],
                 Annotated[NoNul, StringConstraints(max_length=1024)]] = (
        Field(default_factory=dict)
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if "\0" in value:
            raise ValueError("name must not contain NUL")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | str | None) -> list[str] | str | None:
        if value is not None and not (value.strip() if isinstance(value, str) else value):
            raise ValueError("command must not be empty")
        return value

    @field_validator("script")
    @classmethod
    def _script(cls, value: str | None) -> str | None:
        return value if value is None else _check_relative(value, "script")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        archive = IMAGE_ARCHIVE.match(value or "")
        if archive:
            _check_relative(archive.group(2), "an image archive")
        return value

    @property
    def image_archive(self) -> str | None:
        """The archive file an ``oci-archive:``/``docker-archive:`` image comes from, relative to the spec."""
        archive = IMAGE_ARCHIVE.match(self.image or "")
        return archive.group(2) if archive else None

    @model_validator(mode="after")
    def _payload(self) -> "JobSpec":
        if (self.command is None) == (self.script is None):
            raise ValueError("give exactly one of 'command' or 'script'")
        if self.image and self.runtime == "none":
            raise ValueError(
                "'image' is set but 'runtime' is none: set runtime to auto, apptainer, "
                "singularity, podman or docker"
            )
        if self.runtime != "none" and not self.image:
            raise ValueError(f"'runtime' is {self.runtime} but no 'image' is given")
        if self.image_archive and self.runtime not in ("auto", "podman", "docker"):
            raise ValueError(f"'image' is an archive, which {self.runtime} does not load: set runtime to podman, "
                             "docker or auto")
        return self


@dataclass(frozen=True)
class InputFile:
    """One input on the controller: its path relative to the spec folder, and size."""

    rel: str
    path: Path
    size: int


@dataclass(frozen=True)
class ResolvedSpec:
    """A validated spec with its inputs found on disk, ready to plan."""

    spec: JobSpec
    spec_dir: Path
    inputs: tuple[InputFile, ...]
    script: Path | None


def json_schema() -> dict:
    return JobSpec.model_json_schema()


def load_spec(path: str | os.PathLike) -> ResolvedSpec:
    """Read, validate and resolve a spec file; raise ``InvalidInput`` naming the field."""
    spec_path = Path(path)
    try:
        with open(spec_path, "rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise InvalidInput(f"spec {str(spec_path)!r} is larger than 1 MiB; a spec names its inputs, "
                               "it does not hold them")
        raw = load_yaml(data.decode("utf-8"), str(spec_path))
    except FileNotFoundError:
        raise InvalidInput(f"spec file {str(spec_path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read spec {str(spec_path)!r}: {exc}") from None
    spec = validate_spec(raw, source=str(spec_path))
    spec_dir = spec_path.resolve().parent
    _check_archive(spec, spec_dir, str(spec_path))
    return ResolvedSpec(
        spec=spec,
        spec_dir=spec_dir,
        inputs=tuple(_resolve_inputs(spec.inputs, spec_dir, str(spec_path))),
        script=_resolve_script(spec.script, spec_dir, str(spec_path)),
    )


def _check_archive(spec: JobSpec, spec_dir: Path, source: str) -> None:
    """An image archive must be a file inside the spec's folder."""
    if spec.image_archive:
        path = (spec_dir / spec.image_archive).resolve()
        if not _inside(path, spec_dir) or not path.is_file():
            raise InvalidInput(f"{source}: image: archive {spec.image_archive!r} is not a file in the spec's folder",
                               hint="build it first (podman save --format oci-archive -o FILE IMAGE)")


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice (YAML says keys are unique; PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise InvalidInput(f"{self.name}: line {key_node.start_mark.line + 1}: key {key!r} is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str) -> object:
    """YAML from a hand-written file: duplicate keys and absurd nesting are errors naming the file."""
    try:
        loader = _StrictLoader(text)  # reads the whole text first: a control character fails here
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not valid YAML: {exc}") from None
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{source}: nested too deeply to be a job spec") from None
    finally:
        loader.dispose()


def validate_spec(raw: object, source: str = "spec") -> JobSpec:
    return validate(JobSpec, raw, source, "job spec")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _resolve_inputs(patterns: list[str], spec_dir: Path, source: str) -> list[InputFile]:
    found: dict[str, InputFile] = {}
    for index, pattern in enumerate(patterns):
        where = f"{source}: inputs[{index}]"
        matches = sorted(spec_dir.glob(pattern)) if _is_glob(pattern) else [spec_dir / pattern]
        matches = [m for m in matches if m.exists() or m.is_symlink()]
        if not matches:
            raise InvalidInput(f"{where}: {pattern!r} matches no file under {spec_dir}")
        for match in matches:
            files = _files_under(match)
            if not files:
                raise InvalidInput(f"{where}: folder {str(match.relative_to(spec_dir))!r} holds no files")
            for file in files:
                try:
                    real = file.resolve(strict=True)
                except (OSError, RuntimeError) as exc:  # a dangling link, a symlink loop
                    raise InvalidInput(f"{where}: {str(file.relative_to(spec_dir))!r} cannot be resolved: "
                                       f"{getattr(exc, 'strerror', None) or exc}") from None
                if not _inside(real, spec_dir):
                    raise InvalidInput(
                        f"{where}: {str(file.relative_to(spec_dir))!r} resolves to {real}, "
                        "outside the spec folder"
                    )
                if not real.is_file():
                    raise InvalidInput(f"{where}: {str(file)!r} is not a regular file")
                rel = file.relative_to(spec_dir).as_posix()
                if "\n" in rel or "\r" in rel:  # the input list has one name per line
                    raise InvalidInput(f"{where}: {rel!r}: file names with a line break cannot be inputs")
                found.setdefault(rel, InputFile(rel=rel, path=real, size=real.stat().st_size))
    return list(found.values())


def _files_under(path: Path) -> list[Path]:
    if path.is_dir() and not path.is_symlink():
        files = []
        for root, dirs, names in os.walk(path):
            dirs.sort()
            files.extend(Path(root) / name for name in sorted(names))
        return files
    return [path]


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _resolve_script(script: str | None, spec_dir: Path, source: str) -> Path | None:
    if script is None:
        return None
    path = (spec_dir / script).resolve()
    if not _inside(path, spec_dir):
        raise InvalidInput(f"{source}: script: {script!r} resolves outside the spec folder")
    if not path.is_file():
        raise InvalidInput(f"{source}: script: {script!r} does not exist")
    return path

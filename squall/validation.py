"""Shared pydantic conventions: strict models, and errors that name their field.

Config files are written by hand, so every error says where (``resources.cpus``,
``squall_partitions[1].price``) and an unknown key gets a "did you mean".
"""

from __future__ import annotations

import difflib
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from squall.errors import InvalidInput


class StrictModel(BaseModel):
    """Unknown keys are errors, types are not coerced, values never change."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], raw: object, source: str, what: str) -> M:
    """``model`` from ``raw``, or ``InvalidInput`` listing every error with its field path."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"{source}: {what} must be a mapping of fields, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(f"{source}: invalid {what}\n  " + "\n  ".join(describe_errors(exc, model))) from None


def describe_errors(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    return [_describe(error, root) for error in exc.errors()]


def field_path(loc: tuple) -> str:
    """``("inputs", 2)`` -> ``inputs[2]``; ``("resources", "cpus")`` -> ``resources.cpus``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _describe(error: dict, root: type[BaseModel]) -> str:
    loc = tuple(p for p in error["loc"] if not _is_union_tag(p))
    if error["type"] == "extra_forbidden":
        return f"{field_path(loc)}: unknown key{_did_you_mean(loc, root)}"
    if error["type"] == "missing":
        return f"{field_path(loc)}: required field is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{field_path(loc)}: {message}" if loc else message


def _is_union_tag(part: object) -> bool:
    # pydantic inserts the union member it tried ("list[str]", "str") into loc.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float"})


def _did_you_mean(loc: tuple, root: type[BaseModel]) -> str:
    model = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # an item of a list of models
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        inner = getattr(annotation, "__args__", (annotation,))
        models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:
            return ""
        model = models[0]
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(model.model_fields)}"

"""The v1 API's OpenAPI document, committed as ``api/openapi.json``, and what would break a v1 client.

    python -m squall.server.openapi api/openapi.json   # write the current document

A change breaks a client when it removes a route, a field of an answer, or an
enum value (of an answer or an input), or adds a required input (a
parameter, a form or body field). Additions that are optional are not
breaking; the committed document is then refreshed with the command above.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

METHODS = ("get", "post", "put", "patch", "delete")


def document() -> dict:
    from squall.server.app import create_app

    with tempfile.TemporaryDirectory(prefix="squall-openapi-") as home:
        return create_app(Path(home)).openapi()


def breaking_changes(old: dict, new: dict) -> list[str]:
    found: list[str] = []
    for path, operations in old.get("paths", {}).items():
        for method in METHODS:
            if method not in operations:
                continue
            where = f"{method.upper()} {path}"
            now = new.get("paths", {}).get(path, {}).get(method)
            if now is None:
                found.append(f"{where}: route removed")
                continue
            found += _inputs(old, new, operations[method], now, where)
            for status, answer in operations[method].get("responses", {}).items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                now_schema = now.get("responses", {}).get(status, {}).get("content", {}).get(
                    "application/json", {}).get("schema")
                if schema is not None and now_schema is None:
                    found.append(f"{where} {status}: answer removed")
                elif schema is not None:
                    found += _answer(old, new, schema, now_schema, f"{where} {status}")
    return found


def _inputs(old_doc: dict, new_doc: dict, old: dict, new: dict, where: str) -> list[str]:
    found = []
    was = {(p["in"], p["name"]): p for p in old.get("parameters", [])}
    for parameter in new.get("parameters", []):
        key = (parameter["in"], parameter["name"])
        if parameter.get("required") and not (key in was and was[key].get("required")):
            found.append(f"{where}: new required {parameter['in']} parameter {parameter['name']!r}")
        if key in was:
            found += _enums(old_doc, new_doc, was[key].get("schema", {}), parameter.get("schema", {}),
                            f"{where} parameter {parameter['name']!r}")
    old_body = _body_schema(old_doc, old)
    new_body = _body_schema(new_doc, new)
    if new_body is not None:
        required_before = set((old_body or {}).get("required", []))
        for name in set(new_body.get("required", [])) - required_before:
            found.append(f"{where}: new required input {name!r}")
        for name, schema in new_body.get("properties", {}).items():
            before = (old_body or {}).get("properties", {}).get(name)
            if before is not None:
                found += _enums(old_doc, new_doc, before, schema, f"{where} input {name!r}")
    return found


def _body_schema(document: dict, operation: dict) -> dict | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        return _resolve(document, media.get("schema", {}))
    return None


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _branches(document: dict, schema: dict) -> list[dict]:
    schema = _resolve(document, schema)
    options = schema.get("anyOf") or schema.get("oneOf")
    return [_resolve(document, s) for s in options] if options else [schema]


def _enums(old_doc: dict, new_doc: dict, old: dict, new: dict, where: str) -> list[str]:
    before = {v for s in _branches(old_doc, old) for v in s.get("enum", [])}
    after = {v for s in _branches(new_doc, new) for v in s.get("enum", [])}
    return [f"{where}: enum value {value!r} removed" for value in sorted(before - after, key=str)] if after or \
        any("enum" in s for s in _branches(new_doc, new)) else []


def _answer(old_doc: dict, new_doc: dict, old: dict, new: dict, where: str, depth: int = 0) -> list[str]:
    """Every field and enum value a client could read in ``old`` is still in ``new``."""
    if depth > 12:
        return []
    found = _enums(old_doc, new_doc, old, new, where)
    old_branches, new_branches = _branches(old_doc, old), _branches(new_doc, new)
    for branch in old_branches:
        if "properties" in branch:
            target = next((b for b in new_branches if "properties" in b), None)
            if target is None:
                found.append(f"{where}: no longer an object")
                continue
            for name, schema in branch["properties"].items():
                if name not in target["properties"]:
                    found.append(f"{where}: field {name!r} removed")
                else:
                    found += _answer(old_doc, new_doc, schema, target["properties"][name], f"{where}.{name}",
                                     depth + 1)
        if "items" in branch:
            target = next((b for b in new_branches if "items" in b), None)
            if target is None:
                found.append(f"{where}: no longer a list")
            else:
                found += _answer(old_doc, new_doc, branch["items"], target["items"], f"{where}[]", depth + 1)
    return found


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(document(), indent=1, sort_keys=True) + "\n")

"""The committed OpenAPI document (``api/openapi.json``) and the check that no change breaks a v1 client."""

from __future__ import annotations

import copy
import json

import pytest

from squall.server.openapi import breaking_changes, document
from tests.conftest import REPO

COMMITTED = REPO / "api" / "openapi.json"


@pytest.fixture(scope="module")
def current() -> dict:
    return document()


def test_no_change_breaks_a_v1_client(current):
    assert breaking_changes(json.loads(COMMITTED.read_text()), current) == []


def test_the_committed_document_is_the_current_one(current):
    assert json.loads(COMMITTED.read_text()) == json.loads(json.dumps(current, sort_keys=True)), \
        "refresh it: python -m squall.server.openapi api/openapi.json"


def test_every_route_is_versioned_and_answers_in_the_envelope(current):
    for path, operations in current["paths"].items():
        if path == "/metrics":  # Prometheus's own format, at the path scrapers look for
            continue
        assert path.startswith("/api/v1/"), path
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if schema is None or status == "422" and "HTTPValidationError" in json.dumps(schema):
                    continue
                name = schema["$ref"].rsplit("/", 1)[-1]
                assert name.startswith("Envelope"), (method, path, status, name)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["paths"].pop("/api/v1/me"), "GET /api/v1/me: route removed"),
    (lambda d: d["components"]["schemas"]["Me"]["properties"].pop("org"), "field 'org' removed"),
    (lambda d: d["components"]["schemas"]["TaskStatus"]["enum"].remove("lost"), "enum value 'lost' removed"),
    (lambda d: d["paths"]["/api/v1/jobs"]["get"]["parameters"].append(
        {"in": "query", "name": "team", "required": True, "schema": {"type": "string"}}),
     "new required query parameter 'team'"),
    (lambda d: d["components"]["schemas"]["SpecPath"]["required"].append("site"), "new required input 'site'"),
])
def test_each_kind_of_breaking_change_is_found(current, change, expected):
    changed = copy.deepcopy(current)
    change(changed)
    found = breaking_changes(current, changed)
    assert any(expected in line for line in found), found


def test_an_optional_addition_breaks_nothing(current):
    changed = copy.deepcopy(current)
    changed["components"]["schemas"]["Me"]["properties"]["email"] = {"type": "string"}
    changed["paths"]["/api/v1/jobs"]["get"]["parameters"].append(
        {"in": "query", "name": "label", "required": False, "schema": {"type": "string"}})
    assert breaking_changes(current, changed) == []

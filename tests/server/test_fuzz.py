"""Property-based fuzzing of the live server (schemathesis over the server's own OpenAPI document): no
answer is a 5xx, and every answer matches the document and is in the envelope."""

from __future__ import annotations

import signal
import subprocess

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from hypothesis import HealthCheck, given, settings

from squall.store import Store
from squall.tokens import create
from tests.conftest import Squall
from tests.server.test_live_server import free_port, wait_until_up


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "work").mkdir()
    squall = Squall(root / "home", root / "work")
    store = Store(squall.home)
    token = create(store, "fuzzer", "acme", "admin")[0]
    store.close()
    port = free_port()
    log = open(root / "server.log", "w")  # a pipe nobody reads would fill with the fuzzer's failed sign-ins
    server = subprocess.Popen(squall.argv("server", "--port", str(port), "--local-site"), cwd=squall.cwd,
                              env=squall.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(server, port)
        yield {"url": f"http://127.0.0.1:{port}", "token": token}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


# Every check runs. A job spec (an uploaded file, or one the server reads) is YAML the document cannot
# describe, so a schema-valid submission may still be refused, with 422 naming the field.
CONFIG = """
[[operations]]
include-path-regex = "^/api/v1/(jobs|jobs/from-path|estimate)$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "413", "422", "429"]
"""


def test_no_server_error_and_every_answer_matches_the_document(live):
    """Each operation in turn, with Hypothesis examples drawn from the document (schemathesis's pytest plugin
    does not run under pytest 9 yet, so its strategies are driven here), under every check schemathesis has;
    bearer auth is declared in the document."""
    # the organisation's stream never ends by design: it is tested in test_api, not fuzzed
    schema = schemathesis.openapi.from_url(f"{live['url']}/api/v1/openapi.json",
                                           config=SchemathesisConfig.from_str(CONFIG)).exclude(path="/api/v1/events")
    assert schema.raw_schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            response = case.call_and_validate(base_url=live["url"],
                                              headers={"Authorization": f"Bearer {live['token']}"},
                                              )
            kinds = response.headers.get("content-type") or response.headers.get("Content-Type") or []
            assert kinds, response.headers  # every answer says what it is
            if any(kind.startswith("application/json") for kind in kinds):
                assert set(response.json()) == {"success", "error_msgs", "data"}, operation.label

        fuzz()

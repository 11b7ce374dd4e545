"""A short PostgreSQL outage under the server and its controllers: every database process ends, then the
server starts again. The API answers 503 naming the store meanwhile (it answered 500), the server's event
reader and take-over loop carry on (they stopped for good), and a job's controller waits for the store and
finishes its job (it died with an internal error)."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from squall.server.app import create_app
from squall.store import Store
from squall.tokens import create
from tests.conftest import communicate_or_show_stacks, kill_quietly


@pytest.fixture
def shared(postgres, monkeypatch):
    url = postgres.new_database()
    monkeypatch.setenv("SQUALL_DATABASE_URL", url)
    yield postgres, url


def test_the_api_answers_503_naming_the_store_and_its_loops_carry_on(shared, tmp_path):
    postgres, url = shared
    home = tmp_path / "home"
    store = Store(home)
    token = create(store, "ana", "acme", "admin")[0]
    store.close()
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(home, take_over_every=0.2)) as client:
        assert client.get("/api/v1/jobs", headers=headers).status_code == 200
        postgres.down()
        try:
            time.sleep(1)  # the background loops meet the outage too
            answer = client.get("/api/v1/jobs", headers=headers)
        finally:
            postgres.up()
        assert answer.status_code == 503, answer.text
        message = answer.json()["error_msgs"][0]
        assert "does not answer" in message and f"127.0.0.1:{postgres.port}" in message, message
        time.sleep(1)
        assert client.get("/api/v1/jobs", headers=headers).status_code == 200
        tasks = [task for task in client.app.state.background if task.done()]
        assert not tasks, [task.exception() for task in tasks]  # the event reader and take-over still run


def test_a_controller_waits_out_the_outage_and_finishes_its_job(shared, squall, make_spec):
    postgres, url = shared
    squall.env["SQUALL_DATABASE_URL"], squall.database = url, url
    spec = make_spec({"name": "outage", "split": 3, "outputs": ["ok"],
                      "command": 'sleep 2; echo ok > "$SQUALL_OUTPUT_DIR/ok"'})
    controller = squall.start("job", "run", str(spec), "--output", "json")
    try:
        squall.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=60)
        postgres.down()
        time.sleep(8)
        postgres.up()
        out, err = communicate_or_show_stacks(controller, timeout=180)
    finally:
        kill_quietly(controller)
    report = json.loads(out)
    assert controller.returncode == 0 and report["status"] == "succeeded", (report, err[-2000:])
    assert "does not answer" in err, err[-2000:]

"""The v1 API in process (FastAPI's TestClient over the real app, the real store, real background
controllers on the local site): the envelope, tokens and roles, organisation isolation, and the example
job submitted with its inputs uploaded giving the local run's checksums."""

from __future__ import annotations

import hashlib
import json
import re
import io
import tarfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from squall.server.app import create_app
from squall.server.auth import FAILURES
from squall.store import Store
from squall.tokens import create
from tests.conftest import EXAMPLE


pytestmark = pytest.mark.usefixtures("database")  # the API over either store


@pytest.fixture
def server(tmp_path):
    home = tmp_path / "home"
    app = create_app(home, local_site=True)
    store = Store(home)
    tokens = {name: create(store, user, org, role, application)[0] for name, user, org, role, application in (
        ("a_admin", "ana", "acme", "admin", None), ("a_member", "bo", "acme", "member", None),
        ("a_partner", "portal", "acme", "partner", "wind-energy"), ("a_partner2", "other", "acme", "partner", "solar"),
        ("b_member", "cy", "bravo", "member", None))}
    store.close()
    with TestClient(app) as client:
        client.home, client.tokens = home, tokens
        yield client


def auth(client, who: str) -> dict:
    return {"Authorization": f"Bearer {client.tokens[who]}"}


def example_files() -> list:
    """The example's spec and the files it names, as a multipart upload."""
    files = [("spec", ("job.yaml", (EXAMPLE / "job.yaml").read_bytes()))]
    for path in sorted((EXAMPLE / "data").iterdir()) + [EXAMPLE / "wind_stats.py"]:
        files.append(("files", (str(path.relative_to(EXAMPLE)), path.read_bytes())))
    return files


def upload_example(client, who: str, **form):
    return client.post("/api/v1/jobs", files=example_files(), data=form, headers=auth(client, who))


def wait_done(client, who: str, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth(client, who)).json()["data"]
        if job["phase"] == "done":
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "meta" not in p.relative_to(folder).parts and p.name != "job.json"}


def store_counts(home: Path) -> tuple:
    store = Store(home)  # the test's database (SQUALL_DATABASE_URL when it is PostgreSQL)
    try:
        return tuple(store.rows(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("jobs", "journal", "tokens"))
    finally:
        store.close()


def assert_envelope(response, success: bool) -> dict:
    body = response.json()
    assert set(body) == {"success", "error_msgs", "data"}, body
    assert body["success"] is success and isinstance(body["error_msgs"], list)
    if not success:
        assert body["error_msgs"] and isinstance(body["data"]["exit_code"], int)
    return body


def test_no_token_or_a_bad_one_is_401_in_the_envelope_and_failures_are_rate_limited(server):
    assert_envelope(server.get("/api/v1/jobs"), False)
    assert server.get("/api/v1/jobs").status_code == 401
    forged = server.tokens["a_member"][:-4] + "AAAA"
    for _ in range(FAILURES):
        response = server.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401 and forged not in response.text
    blocked = server.get("/api/v1/me", headers=auth(server, "a_member"))  # that token id, from this client
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert_envelope(blocked, False)
    assert server.get("/api/v1/me", headers=auth(server, "a_admin")).status_code == 200  # its other tokens work


def test_the_example_uploaded_gives_the_local_runs_checksums(server, squall, tmp_path):
    local = squall.json("job", "run", str(EXAMPLE / "job.yaml"))[1]
    submitted = upload_example(server, "a_member")
    assert submitted.status_code == 202, submitted.text
    job = assert_envelope(submitted, True)["data"]
    assert job["project"] == "wind-energy" and len(job["tasks"]) == 4
    done = wait_done(server, "a_member", job["id"])
    assert done["status"] == "succeeded", done
    assert done["results"] == f"/api/v1/jobs/{job['id']}/results"  # its URL, not the server's folder
    archive = server.get(done["results"], headers=auth(server, "a_member"))
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        tar.extractall(tmp_path / "downloaded", filter="data")
    assert digests(tmp_path / "downloaded" / job["id"]) == digests(Path(local["results"]))
    one = server.get(f"/api/v1/jobs/{job['id']}/results/task-0/summary.csv", headers=auth(server, "a_member"))
    assert one.content == (Path(local["results"]) / "task-0" / "summary.csv").read_bytes()
    log = server.get(f"/api/v1/jobs/{job['id']}/logs", params={"task": 1}, headers=auth(server, "a_member"))
    assert assert_envelope(log, True)["data"]["ended"] is True
    listed = server.get("/api/v1/jobs", params={"status": "succeeded"}, headers=auth(server, "a_admin")).json()
    assert [j["id"] for j in listed["data"]] == [job["id"]]


def test_another_organisation_sees_nothing_and_every_refusal_changes_nothing(server):
    job = upload_example(server, "a_member").json()["data"]
    wait_done(server, "a_member", job["id"])
    before = store_counts(server.home)
    for method, path in (("get", ""), ("get", "/tasks"), ("get", "/logs"), ("get", "/results"),
                         ("get", "/results/task-0/summary.csv"), ("post", "/cancel")):
        response = getattr(server, method)(f"/api/v1/jobs/{job['id']}{path}", headers=auth(server, "b_member"))
        assert response.status_code == 404, (path, response.text)
        assert_envelope(response, False)
    assert server.get("/api/v1/jobs", headers=auth(server, "b_member")).json()["data"] == []
    assert server.get("/api/v1/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert server.get("/api/v1/sites", headers=auth(server, "a_member")).status_code == 403
    assert store_counts(server.home) == before


def test_a_partner_submits_for_its_application_only_and_reads_no_one_elses_data(server):
    mine = upload_example(server, "a_partner")  # the example's project is wind-energy: this partner's
    assert mine.status_code == 202, mine.text
    wait_done(server, "a_partner", mine.json()["data"]["id"])
    refused = upload_example(server, "a_partner2")
    assert refused.status_code == 422 and "project" in refused.json()["error_msgs"][0]
    other = server.get(f"/api/v1/jobs/{mine.json()['data']['id']}", headers=auth(server, "a_partner2"))
    assert other.status_code == 404
    assert server.get("/api/v1/usage", headers=auth(server, "a_partner")).status_code == 403
    usage = server.get("/api/v1/usage", headers=auth(server, "a_member"))
    assert [r["job"] for r in usage.json()["data"]] == [mine.json()["data"]["id"]]


def test_bad_input_names_the_field_and_leaves_nothing(server):
    before = store_counts(server.home)
    response = upload_example(server, "a_member", strategy="richest")
    assert response.status_code == 422 and "strategy" in response.json()["error_msgs"][0]
    escape = server.post("/api/v1/jobs", headers=auth(server, "a_member"),
                         files=[("spec", ("job.yaml", (EXAMPLE / "job.yaml").read_bytes())),
                                ("files", ("../../etc/x", b"x"))])
    assert escape.status_code == 422 and "files" in escape.json()["error_msgs"][0]
    by_path = server.post("/api/v1/jobs/from-path", json={"spec_path": str(EXAMPLE / "job.yaml")},
                          headers=auth(server, "a_member"))
    assert by_path.status_code == 403  # no --spec-root given
    assert store_counts(server.home) == before
    assert list((server.home / "server" / "uploads").iterdir()) == []


def sse(response, stop) -> list[dict]:
    """Events read from a server-sent event stream until ``stop(event)``."""
    events, current = [], {}
    for line in response.iter_lines():
        if line.startswith(("id:", "event:", "data:")):
            key, _, value = line.partition(": ")
            current[key.rstrip(":")] = value
        elif not line and current:
            events.append({**json.loads(current["data"]), "id": int(current["id"]), "name": current["event"]})
            current = {}
            if stop(events[-1]):
                break
    return events


def test_a_jobs_events_stream_live_resume_from_an_id_and_stay_in_the_organisation(server):
    from squall.server.events import read_after

    job = upload_example(server, "a_member").json()["data"]
    with server.stream("GET", f"/api/v1/jobs/{job['id']}/events", headers=auth(server, "a_member")) as live:
        assert live.headers["content-type"].startswith("text/event-stream")
        events = sse(live, lambda e: False)  # the stream ends with the job
    names = [e["name"] for e in events]
    assert names[-1] == "done.succeeded" and "money.settled" in names and "launch.begin" in names
    states = {(e["detail"]["index"], e["detail"]["state"]) for e in events if e["name"] == "monitor.task"}
    assert {(i, "succeeded") for i in range(4)} <= states
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    middle = events[len(events) // 2]["id"]
    headers = {**auth(server, "a_member"), "Last-Event-ID": str(middle)}
    with server.stream("GET", f"/api/v1/jobs/{job['id']}/events", headers=headers) as resumed:
        again = sse(resumed, lambda e: False)
    assert again == [e for e in events if e["id"] > middle]
    with server.stream("GET", "/api/v1/events", params={"after": 0}, headers=auth(server, "a_admin")) as org:
        seen = sse(org, lambda e: e["name"].startswith("done."))
    assert {e["job"] for e in seen} == {job["id"]}
    assert server.get(f"/api/v1/jobs/{job['id']}/events", headers=auth(server, "b_member")).status_code == 404
    assert read_after(server.app.state.open_store, server.app.state.hidden_paths, 0, org="bravo") == []


def test_metrics_count_the_organisations_jobs_waits_and_refusals_for_admins_only(server, squall):
    job = upload_example(server, "a_member").json()["data"]
    wait_done(server, "a_member", job["id"])
    squall.env["SQUALL_HOME"] = str(server.home)
    proc = squall.run("quota", "set", "project:acme/wind-energy", "cpus", "0")
    assert proc.returncode == 0, proc.stderr
    refused = upload_example(server, "a_member")
    assert refused.status_code == 409 and refused.json()["data"]["exit_code"] == 4
    assert server.get("/metrics", headers=auth(server, "a_member")).status_code == 403
    text = server.get("/metrics", headers=auth(server, "a_admin")).text
    assert 'squall_jobs{org="acme",status="succeeded"} 1.0' in text
    assert 'squall_admission_refusals_total{org="acme"} 1.0' in text
    assert 'squall_queue_wait_seconds_count{org="acme"} 1.0' in text
    assert "bravo" not in server.get("/metrics", headers=auth(server, "a_admin")).text


def test_metrics_count_the_servers_own_requests_streams_and_controllers(server):
    def figure(name: str) -> float:
        text = server.get("/metrics", headers=auth(server, "a_admin")).text
        found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    refused = 'squall_server_requests_total{method="GET",route="/api/v1/jobs/{job_id}",status="404"}'
    before = figure(refused)
    for _ in range(3):
        server.get("/api/v1/jobs/261207-nosuch", headers=auth(server, "a_member"))
    assert figure(refused) == before + 3  # by route template, never the raw path
    assert figure('squall_server_controllers{state="orphaned"}') == 0
    job = upload_example(server, "a_member").json()["data"]
    with server.stream("GET", "/api/v1/events", headers=auth(server, "a_member")):
        assert figure("squall_server_event_streams") == 1
    wait_done(server, "a_member", job["id"])
    assert figure('squall_server_controllers{state="running"}') == 0
    assert 'route="/api/v1/jobs/261207-nosuch"' not in server.get("/metrics", headers=auth(server, "a_admin")).text

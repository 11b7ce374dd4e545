"""A hostile partner against the server: what a token's payload can reach, and what the server serves.

The payload below tries what a partner's tool-chain did before the local
site was sandboxed: read the store, list other jobs' folders, read the
server's environment through /proc, write outside its task folder and make
its own token an admin. Every attempt must fail, from a partner token and an
admin token alike, and the store must be as it was.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from squall.server.app import create_app
from squall.sites.sandbox import local_sandbox
from squall.store import Store
from squall.tokens import create

ESCAPES = r'''
import json, os, sqlite3, sys
home, server_pid = sys.argv[1], sys.argv[2]
tried = {}

def attempt(name, action):
    try:
        action()
        tried[name] = "ESCAPED"
    except Exception as exc:
        tried[name] = "blocked: %s" % type(exc).__name__

def rewrite_token():
    db = sqlite3.connect("file:%s?mode=rw" % os.path.join(home, "squall.db"), uri=True)
    db.execute("UPDATE tokens SET role = 'admin'")
    db.commit()
    if not db.total_changes:
        raise PermissionError("no token changed")

attempt("read the store", lambda: open(os.path.join(home, "squall.db"), "rb").read(1))
def seen(folder):
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []

attempt("read the server's environment", lambda: open("/proc/%s/environ" % server_pid, "rb").read(1))
attempt("see the server's process", lambda: os.stat("/proc/%s" % server_pid))
attempt("write outside the task folder", lambda: open(os.path.join(home, "planted"), "w").write("x"))
attempt("write beside its own files", lambda: open("planted", "w").write("x"))
attempt("rewrite a token", rewrite_token)
tried["environment"] = sorted(os.environ)
tried["home"] = seen(home)  # the sandbox makes the folders above the task's: nothing else is in them
tried["jobs"] = seen(os.path.join(home, "sites", "local", "work"))
with open(os.path.join(os.environ["SQUALL_OUTPUT_DIR"], "report.json"), "w") as out:
    json.dump(tried, out)
'''

sandboxed = pytest.mark.skipif(local_sandbox().fields is None,
                               reason=f"no sandbox on this machine: {local_sandbox().reason}")


def escape_spec(folder: Path, home: Path, server_pid: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "job.yaml"
    spec.write_text(yaml.safe_dump({"name": "escape", "command": ["python3", "-c", ESCAPES, str(home),
                                                                   str(server_pid)],
                                    "outputs": ["report.json"], "resources": {"walltime": "00:01:00"}}))
    return spec


def assert_all_blocked(report: dict, job_id: str) -> None:
    environment, home, jobs = report.pop("environment"), report.pop("home"), report.pop("jobs")
    assert report and all(result.startswith("blocked") for result in report.values()), report
    assert not [name for name in environment if "DATABASE" in name or "TOKEN" in name or name == "SQUALL_HOME"]
    assert home == ["sites"] and jobs == [f"squall-{job_id}"], (home, jobs)  # no store, uploads, other jobs


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.delenv("SQUALL_DATABASE_URL", raising=False)  # the SQLite store in the home: a file to go for
    home = tmp_path / "home"
    store = Store(home)
    tokens = {role: create(store, f"user-{role}", "acme", role, "portal" if role == "partner" else None)[0]
              for role in ("admin", "partner")}
    tokens["bravo"] = create(store, "eve", "bravo", "member")[0]
    store.close()

    def client(local_site: bool) -> TestClient:
        test_client = TestClient(create_app(home, local_site=local_site, take_over_every=0))
        test_client.home, test_client.tokens = home, tokens
        return test_client

    return client


def auth(client, who: str) -> dict:
    return {"Authorization": f"Bearer {client.tokens[who]}"}


def submit(client, who: str, spec: Path, **form):
    return client.post("/api/v1/jobs", files=[("spec", ("job.yaml", spec.read_bytes()))], data=form,
                       headers=auth(client, who))


def finished(client, who: str, job_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth(client, who)).json()["data"]
        if job["phase"] == "done":
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def tokens_table(home: Path) -> list:
    store = Store(home)
    try:
        return store.rows("SELECT * FROM tokens ORDER BY id")
    finally:
        store.close()


def test_without_local_site_the_server_offers_its_machine_to_no_token(server, tmp_path):
    spec = escape_spec(tmp_path / "spec", tmp_path / "home", os.getpid())
    with server(local_site=False) as client:
        for who in ("admin", "partner"):
            for form in ({}, {"site": "local"}):
                refused = submit(client, who, spec, **form)
                assert refused.status_code in (403, 409, 422), refused.text
                assert "--local-site" in json.dumps(refused.json()), refused.text
            estimated = client.post("/api/v1/estimate", files=[("spec", ("job.yaml", spec.read_bytes()))],
                                    data={"every": "true"}, headers=auth(client, who)).json()["data"]
            local = next(row for row in estimated["sites"] if row["site"] == "local")
            assert local["eligible"] is False and "--local-site" in local["reason"]
    assert not list((tmp_path / "home").glob("sites/local/work/squall-*"))


@sandboxed
@pytest.mark.parametrize("who", ["partner", "admin"])
def test_a_tokens_payload_on_the_local_site_reaches_nothing_of_the_server(server, tmp_path, who):
    home = tmp_path / "home"
    spec = escape_spec(tmp_path / "spec", home, os.getpid())
    before = tokens_table(home)
    with server(local_site=True) as client:
        other = submit(client, "bravo", escape_spec(tmp_path / "other", home, os.getpid()))  # another org's job
        submitted = submit(client, who, spec)
        assert submitted.status_code == 202, submitted.text
        job = finished(client, who, submitted.json()["data"]["id"])
        assert job["status"] == "succeeded", job
        report = json.loads(client.get(f"/api/v1/jobs/{job['id']}/results/task-0/report.json",
                                       headers=auth(client, who)).content)
        finished(client, "bravo", other.json()["data"]["id"])
        me = client.get("/api/v1/me", headers=auth(client, who)).json()["data"]
    assert_all_blocked(report, job["id"])
    assert me["role"] == who and tokens_table(home) == before
    assert not (home / "planted").exists()


@sandboxed
def test_a_local_payload_of_the_cli_reaches_nothing_of_the_home(squall, tmp_path):
    spec = escape_spec(tmp_path / "spec", squall.home, os.getpid())
    code, result = squall.json("job", "run", str(spec))
    assert code == 0, result
    assert_all_blocked(json.loads((Path(result["results"]) / "task-0" / "report.json").read_text()), result["id"])
    assert not (squall.home / "planted").exists()


def test_a_token_neither_prices_a_service_nor_names_another_partners(server, tmp_path):
    folder = tmp_path / "priced"
    folder.mkdir()
    forged = folder / "job.yaml"
    forged.write_text(yaml.safe_dump({"name": "forged", "command": "true", "site": "local",
                                      "service": {"partner": "portal", "price": "42 credits"}}))
    other = folder / "other.yaml"
    other.write_text(yaml.safe_dump({"name": "other", "command": "true", "service": {"partner": "cfd-co"}}))
    with server(local_site=True) as client:
        priced = submit(client, "partner", forged)
        assert priced.status_code == 422 and "service.price" in priced.text, priced.text
        named = submit(client, "partner", other)
        assert named.status_code == 422 and "names only its own application 'portal'" in named.text, named.text
    store = Store(tmp_path / "home")
    try:
        assert store.rows("SELECT COUNT(*) FROM jobs")[0][0] == 0
    finally:
        store.close()

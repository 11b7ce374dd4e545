"""A hostile partner against the server: what a token's payload can reach, and what the server serves.

The payload below tries what a partner's tool-chain did before the local
site was sandboxed: read the store, list other jobs' folders, read the
server's environment through /proc, write outside its task folder and make
its own token an admin. Every attempt must fail, from a partner token and an
admin token alike, and the store must be as it was.
"""

from __future__ import annotations

import json
import re
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from squall.server.app import create_app
from squall.sites.transports.sandbox import local_sandbox
from squall.store import Store
from squall.tokens import create
from tests.server.test_api import wait_done as finished

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
        seen = [client.get(f"/api/v1/jobs/{job['id']}", params={"journal": True}, headers=auth(client, who)).text,
                client.get(f"/api/v1/jobs/{job['id']}/logs", headers=auth(client, who)).text]
    assert not [text for text in seen if str(home) in text or str(tmp_path) in text]  # no server path shown
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


BAD_NAMES = [".", "./job.yaml", "n" * 300, "a/" * 2000 + "f", "nul\0name", "/etc/passwd", "../up"]


def test_bad_upload_names_and_offsets_are_4xx_in_the_envelope_and_leave_nothing(server, tmp_path):
    spec = escape_spec(tmp_path / "spec", tmp_path / "home", 1)
    with server(local_site=False) as client:
        for name in BAD_NAMES:
            answer = client.post("/api/v1/jobs", files=[("spec", ("job.yaml", spec.read_bytes())),
                                                        ("files", (name, b"x"))], headers=auth(client, "admin"))
            assert 400 <= answer.status_code < 500, (name[:40], answer.status_code, answer.text[:300])
            assert answer.json()["success"] is False
        for pair in ([("d/f", b"x"), ("d", b"y")], [("x", b"x"), ("x/y", b"y")]):  # a file and a folder alike
            answer = client.post("/api/v1/jobs", files=[("spec", ("job.yaml", spec.read_bytes())),
                                                        *[("files", item) for item in pair]],
                                 headers=auth(client, "admin"))
            assert answer.status_code == 422 and "given twice" in answer.text, answer.text
        huge = client.get("/api/v1/jobs/nope/logs", params={"offset": 10 ** 30}, headers=auth(client, "admin"))
        assert huge.status_code == 422 and huge.json()["success"] is False
    assert list((tmp_path / "home" / "server" / "uploads").iterdir()) == []


def read_stream(response, wanted: int | None = None) -> tuple[list[dict], bool]:
    """Events of a server-sent stream until it ends (True), ``wanted`` events came, or a keepalive says
    nothing more is coming (False)."""
    events, current = [], {}
    for line in response.iter_lines():
        if line.startswith(": keepalive"):
            return events, False
        if line.startswith(("id:", "event:", "data:")):
            key, _, value = line.partition(": ")
            current[key.rstrip(":")] = value
        elif not line and current:
            events.append({"id": int(current["id"]), "name": current["event"]})
            current = {}
            if wanted is not None and len(events) >= wanted:
                return events, False
    return events, True


def test_event_streams_refuse_huge_ids_page_through_a_long_backlog_and_end_a_finished_job(server, tmp_path,
                                                                                          monkeypatch):
    from squall.server import events as events_module

    monkeypatch.setattr(events_module, "KEEPALIVE", 2.0)  # a stream that would hang says so within seconds
    spec = tmp_path / "quick.yaml"
    spec.write_text(yaml.safe_dump({"name": "quick", "command": "true"}))
    with server(local_site=True) as client:
        job = finished(client, "admin", submit(client, "admin", spec).json()["data"]["id"])
        store = Store(client.home)
        try:
            done = store.rows("SELECT MAX(seq) FROM journal WHERE job_id = ?", (job["id"],))[0][0]
            for n in range(1035):  # more than one page of backlog, written while nobody listened
                store.record(job["id"], "gc", "note", n=n)
        finally:
            store.close()
        for query, headers in (({"after": 10 ** 30}, {}), ({}, {"Last-Event-ID": "9" * 30}),
                               ({}, {"Last-Event-ID": "-3"})):
            refused = client.get(f"/api/v1/jobs/{job['id']}/events", params=query,
                                 headers={**auth(client, "admin"), **headers})
            assert refused.status_code == 422 and refused.json()["success"] is False, refused.text
        with client.stream("GET", "/api/v1/events", params={"after": done},
                           headers=auth(client, "admin")) as resumed:
            caught_up, _ = read_stream(resumed, wanted=1035)
        assert len(caught_up) == 1035 and caught_up[-1]["id"] == done + 1035
        with client.stream("GET", f"/api/v1/jobs/{job['id']}/events",
                           headers={**auth(client, "admin"), "Last-Event-ID": str(done)}) as at_the_end:
            assert read_stream(at_the_end) == ([], True)  # ended at once, nothing resent


def test_every_answer_carries_security_headers_and_authenticated_ones_are_not_cached(server, tmp_path):
    with server(local_site=False) as client:
        answers = {"json": client.get("/api/v1/me", headers=auth(client, "admin")),
                   "error": client.get("/api/v1/jobs/nope", headers=auth(client, "admin")),
                   "page": client.get("/dashboard/sign-in"),
                   "script": client.get("/dashboard/static/jobs.js")}
        for name, answer in answers.items():
            assert answer.headers["x-content-type-options"] == "nosniff", name
            assert answer.headers["referrer-policy"] == "no-referrer", name
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], name
        assert answers["json"].headers["cache-control"] == "no-store"
        assert "script-src 'self';" in answers["page"].headers["content-security-policy"]
        assert "<script>" not in answers["page"].text
        assert answers["script"].status_code == 200 and "EventSource" in answers["script"].text


def test_the_api_documentation_page_loads_nothing_from_another_origin(server):
    with server(local_site=False) as client:
        page = client.get("/api/v1/docs")
        assert page.status_code == 200 and "https://" not in page.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(asset.startswith("/") for asset in assets), assets  # no CDN: air-gapped sites
        for asset in assets:
            assert client.get(asset).status_code == 200, asset


def test_listings_page_through_the_organisations_own_jobs(server, tmp_path):
    """The dashboard took the newest 100 jobs of the whole server and then kept its organisation's (one showed
    "No jobs yet" with 3 jobs); the API loaded every job. Both now read only the organisation's, a page at a
    time."""
    spec = tmp_path / "quick.yaml"
    spec.write_text(yaml.safe_dump({"name": "quick", "command": "true"}))
    with server(local_site=True) as client:
        mine = [submit(client, "admin", spec).json()["data"]["id"] for _ in range(3)]
        store = Store(client.home)
        try:
            newest = store.rows("SELECT MAX(created_at) FROM jobs")[0][0]
            for n in range(120):  # another organisation's newer jobs, more than a page of the dashboard
                store.create_job(replace(store.job(mine[0]), id=f"bravo-{n:03d}", org="bravo",
                                         created_at=newest + 1 + n), [])
        finally:
            store.close()
        sign_in(client, client.tokens["admin"])
        page = client.get("/dashboard")
        assert all(job_id in page.text for job_id in mine) and "bravo-" not in page.text
        seen, cursor = [], None
        while True:
            answer = client.get("/api/v1/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                headers=auth(client, "admin"))
            seen += [job["id"] for job in answer.json()["data"]]
            cursor = answer.headers.get("x-next-cursor")
            if cursor is None:
                break
        assert seen == list(reversed(mine))


def test_uploads_have_a_size_limit_and_go_when_their_job_ends(server, tmp_path, monkeypatch):
    from squall.gc.sites import collect_garbage

    spec = tmp_path / "quick.yaml"
    spec.write_text(yaml.safe_dump({"name": "quick", "command": "true", "inputs": ["data.bin"]}))
    home = tmp_path / "home"
    with TestClient(create_app(home, local_site=True, take_over_every=0, max_upload_mb=1)) as client:
        client.tokens = server(local_site=False).tokens
        big = [("spec", ("job.yaml", spec.read_bytes())), ("files", ("data.bin", b"x" * (2 << 20)))]
        refused = client.post("/api/v1/jobs", files=big, headers=auth(client, "admin"))
        assert refused.status_code == 413 and refused.json()["success"] is False and "1 MiB" in refused.text

        def chunked():  # no Content-Length: refused once the bytes read pass the limit
            yield b"--b\r\nContent-Disposition: form-data; name=\"spec\"; filename=\"job.yaml\"\r\n\r\n"
            for _ in range(40):
                yield b"y" * (64 << 10)
            yield b"\r\n--b--\r\n"
        refused = client.post("/api/v1/jobs", content=chunked(), headers={**auth(client, "admin"),
                                                                         "Content-Type": "multipart/form-data; boundary=b"})
        assert refused.status_code == 413 and refused.json()["success"] is False
        small = [("spec", ("job.yaml", spec.read_bytes())), ("files", ("data.bin", b"x" * 1000))]
        job = finished(client, "admin", client.post("/api/v1/jobs", files=small,
                                                    headers=auth(client, "admin")).json()["data"]["id"])
        assert job["status"] == "succeeded"
    uploads = home / "server" / "uploads"
    assert list(uploads.iterdir()) == []  # the job's spec and files went with its end
    (uploads / "left-behind").mkdir()
    (uploads / "left-behind" / "job.yaml").write_text("name: x\n")
    store = Store(home)
    try:
        kept = collect_garbage(store, home, now=time.time())  # too young: a submission may be arriving
        assert not [a for a in kept if a.kind == "upload"] and (uploads / "left-behind").exists()
        swept = collect_garbage(store, home, now=time.time() + 7200)
        assert [(a.kind, a.action) for a in swept if a.kind == "upload"] == [("upload", "remove")]
        assert not (uploads / "left-behind").exists()
    finally:
        store.close()


def sign_in(client, token: str, csrf: str | None = None):
    """The dashboard's sign-in form, as a browser fills it (its CSRF value from the page)."""
    form = client.get("/dashboard/sign-in")
    if csrf is None:
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return client.post("/dashboard/sign-in", data={"token": token, "csrf": csrf}, follow_redirects=False)


def test_the_dashboard_holds_a_server_session_not_the_token_and_sign_out_ends_it(server):
    with server(local_site=False) as client:
        signed = sign_in(client, client.tokens["admin"])
        cookie = signed.headers["set-cookie"]
        assert signed.status_code == 303 and client.tokens["admin"] not in cookie
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        session = client.cookies["squall_session"]
        page = client.get("/dashboard")
        assert page.status_code == 200 and "user-admin" in page.text
        assert client.post("/api/v1/jobs", files=[("spec", ("job.yaml", b"name: x\ncommand: 'true'\n"))]
                           ).status_code == 401  # a session only reads
        assert client.post("/dashboard/sign-out", data={"csrf": "forged"}).status_code == 403
        assert client.get("/api/v1/me").status_code == 200  # a forged sign-out ended nothing
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        out = client.post("/dashboard/sign-out", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303 and "squall_session" not in client.cookies
        client.cookies.set("squall_session", session)  # the old cookie, replayed
        assert client.get("/api/v1/me").status_code == 401
        assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/sign-in"


def test_a_session_ends_with_its_token_and_the_sign_in_form_needs_its_own_csrf_value(server):
    with server(local_site=False) as client:
        client.cookies.clear()
        client.get("/dashboard/sign-in")
        forged = client.post("/dashboard/sign-in", data={"token": client.tokens["admin"], "csrf": "other-site"},
                             follow_redirects=False)
        assert forged.status_code == 403 and "squall_session" not in client.cookies
        assert sign_in(client, client.tokens["admin"]).status_code == 303
        assert client.get("/api/v1/me").status_code == 200
        store = Store(client.home)
        try:
            with store.transaction() as db:
                db.execute("UPDATE tokens SET revoked_at = 1 WHERE role = 'admin'")
        finally:
            store.close()
        assert client.get("/api/v1/me").status_code == 401


def test_failed_sign_ins_lock_out_one_token_id_from_one_client_only(server):
    from squall.server.auth import FAILURES

    with server(local_site=False) as client:
        guessed = client.tokens["admin"][:-4] + "AAAA"  # the admin token's id, a wrong secret
        for _ in range(FAILURES):
            assert sign_in(client, guessed).status_code == 401
        assert sign_in(client, client.tokens["admin"]).status_code == 429  # that id, from this client
        assert sign_in(client, client.tokens["partner"]).status_code == 303  # the client's other tokens work
        assert client.get("/api/v1/me", headers=auth(client, "admin")).status_code == 429
        assert client.get("/api/v1/me", headers=auth(client, "bravo")).status_code == 200


def test_the_results_archive_is_made_while_it_is_sent_and_stops_when_the_client_goes(tmp_path):
    """The archive was made whole (in memory up to 64 MB) before its first byte left: 4 downloads of an
    80 MB result took the server from 82 to 336 MB. Now a writer thread feeds a pipe the client drains."""
    import io
    import tarfile
    import threading

    from squall.server.jobs import tar_gz_stream

    folder = tmp_path / "squall-job1"
    (folder / "task-0").mkdir(parents=True)
    (folder / "task-0" / "big.bin").write_bytes(os.urandom(24 << 20))
    (folder / "task-0" / "small.txt").write_text("ok\n")
    writers = lambda: [t for t in threading.enumerate() if t.name == "archive-squall-job1"]  # noqa: E731

    stream = tar_gz_stream(folder)
    first = next(stream)
    time.sleep(0.5)
    assert first and writers(), "the archive was made before it was sent"
    stream.close()  # the client went away
    for _ in range(100):
        if not writers():
            break
        time.sleep(0.05)
    assert not writers(), "the writer kept going for nobody"

    whole = b"".join(tar_gz_stream(folder))
    with tarfile.open(fileobj=io.BytesIO(whole), mode="r:gz") as archive:
        assert archive.extractfile("squall-job1/task-0/small.txt").read() == b"ok\n"
        assert archive.getmember("squall-job1/task-0/big.bin").size == 24 << 20


def test_errors_name_no_folder_of_the_server(tmp_path, monkeypatch):
    monkeypatch.delenv("SQUALL_DATABASE_URL", raising=False)
    home, specs = tmp_path / "home", tmp_path / "specs"
    (specs / "bad").mkdir(parents=True)
    (specs / "bad" / "job.yaml").write_text("name: bad\ncommand: 'true'\ninputs: [missing/*.csv]\n")
    store = Store(home)
    token = create(store, "ana", "acme", "admin")[0]
    store.close()
    with TestClient(create_app(home, [specs], take_over_every=0)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        answers = [client.post("/api/v1/jobs/from-path", json={"spec_path": path}, headers=headers)
                   for path in ("/etc/passwd", str(specs / "bad" / "job.yaml"), str(specs / "none.yaml"))]
    for answer in answers:
        assert answer.status_code in (400, 403, 404, 422) and answer.json()["error_msgs"], answer.text
        assert str(tmp_path) not in answer.text, answer.text

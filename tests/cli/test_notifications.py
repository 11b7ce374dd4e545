"""Notifications reach a real HTTP receiver (apprise json://) at launch and at the end, with the cost; a dead
receiver never fails the job, and its URL (which may hold a secret) never reaches the store."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml


@pytest.fixture
def receiver():
    received: list[tuple[str, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, json.loads(body["message"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


def configure(squall, notify: dict, partners: dict | None = None) -> None:
    path = Path(squall.env["XDG_CONFIG_HOME"]) / "squall" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"notify": notify, "partners": partners or {}}))


def test_user_and_partner_hear_of_launch_and_end_with_the_cost(squall, make_spec, receiver):
    where, received = receiver
    configure(squall, {"*": [f"json://{where}/user"]}, {"cfd-co": [f"json://{where}/partner"]})
    spec = make_spec({"name": "n", "command": "true", "service": {"partner": "cfd-co"}})
    assert squall.json("service", "set", "cfd-co", "--price", "2 credits")[0] == 0
    code, report = squall.json("job", "run", str(spec))
    assert code == 0, report
    seen = sorted((path, event["event"]) for path, event in received)
    assert seen == [("/partner", "finished"), ("/partner", "launched"), ("/user", "finished"), ("/user", "launched")]
    finished = next(event for path, event in received if path == "/user" and event["event"] == "finished")
    assert finished["event_id"] == f"{report['id']}:finished" and finished["status"] == "succeeded"
    assert finished["cost"]["actual"] == {"amount": "0.00", "currency": None}
    launched = next(event for path, event in received if event["event"] == "launched")
    assert launched["estimate"]["site"] == "local"
    # resumed or re-attached, an event is not sent twice
    assert squall.run("job", "attach", report["id"]).returncode in (0, 2)
    assert len(received) == 4


def test_a_dead_receiver_never_fails_the_job_nor_leaks_its_url(squall, make_spec):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret = f"json://hook-user:s3cret@127.0.0.1:{port}/x"
    configure(squall, {"default": [secret]})
    code, report = squall.json("job", "run", str(make_spec({"name": "d", "command": "true"})))
    assert code == 0 and report["status"] == "succeeded"
    failures = squall.query("SELECT detail FROM journal WHERE phase = 'notify' AND event = 'failed'")
    assert [json.loads(d)["targets"] for (d,) in failures] == [["json"], ["json"]]
    assert "s3cret" not in (squall.home / "squall.db").read_bytes().decode(errors="replace")

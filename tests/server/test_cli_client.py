"""The CLI as a client of a running ``squall server``: the same JSON and the same exit codes as locally."""

from __future__ import annotations

import json
import signal

import pytest

from tests.conftest import EXAMPLE
from tests.server.test_live_server import free_port, wait_until_up


@pytest.fixture
def remote(squall):
    """A server over ``squall``'s home, and the CLI pointed at it with a member's token."""
    code, made = squall.json("token", "create", "--user", "ana", "--org", "default", "--role", "member")
    assert code == 0
    port = free_port()
    server = squall.start("server", "--port", str(port), "--local-site")
    try:
        wait_until_up(server, port)
        yield {"SQUALL_SERVER": f"http://127.0.0.1:{port}", "SQUALL_TOKEN": made["token"]}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def same_but_ids_and_times(a: dict, b: dict) -> None:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if k not in ("id", "results", "created_at", "finished_at", "ts", "wall_time", "max_rss_kb",
                                 "journal", "duration_s", "emissions_gco2e", "energy_kwh")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    assert strip(a) == strip(b)


def test_the_same_job_prints_the_same_json_locally_and_through_the_server(squall, remote, make_spec):
    through = squall.run("job", "run", str(EXAMPLE / "job.yaml"), "--output", "json", env=remote)
    assert through.returncode == 0, through.stderr
    job = json.loads(through.stdout)
    here = squall.run("job", "run", str(EXAMPLE / "job.yaml"), "--output", "json")
    same_but_ids_and_times(job, json.loads(here.stdout))
    for argv in (["job", "status", job["id"]], ["job", "list"], ["job", "logs", job["id"], "--task", "all"],
                 ["usage"], ["budget", "show"], ["job", "estimate", str(EXAMPLE / "job.yaml")]):
        local, served = squall.run(*argv, "--output", "json"), squall.run(*argv, "--output", "json", env=remote)
        assert local.returncode == served.returncode, argv
        assert as_a_client_sees(json.loads(local.stdout), squall.home) == json.loads(served.stdout), argv
        assert str(squall.home) not in served.stdout  # the server's paths stay on the server


def as_a_client_sees(value, home):
    """What the server shows of local JSON: its results as their URL, its home as a placeholder."""
    if isinstance(value, dict):
        if "results" in value and "id" in value:
            value = {**value, "results": f"/api/v1/jobs/{value['id']}/results"}
        return {key: as_a_client_sees(item, home) for key, item in value.items()}
    if isinstance(value, list):
        return [as_a_client_sees(item, home) for item in value]
    return value.replace(str(home), "<server home>") if isinstance(value, str) else value


def test_exit_codes_are_the_local_ones(squall, remote, make_spec):
    failing = make_spec({"name": "fails", "command": "exit 3"}, folder="fails")
    assert squall.run("job", "run", str(failing), env=remote).returncode == 1
    bad = make_spec({"name": "bad", "command": "true", "resources": {"memory": "lots"}}, folder="bad")
    proc = squall.run("job", "run", str(bad), "--output", "json", env=remote)
    assert proc.returncode == 2 and "memory" in json.loads(proc.stdout)["error"]
    assert squall.run("job", "status", "261202-nosuch", env=remote).returncode == 2
    no_token = {**remote, "SQUALL_TOKEN": ""}
    proc = squall.run("job", "list", env=no_token)
    assert proc.returncode == 2 and "SQUALL_TOKEN" in proc.stderr
    gone = {**remote, "SQUALL_SERVER": f"http://127.0.0.1:{free_port()}"}
    assert squall.run("job", "list", env=gone).returncode == 5

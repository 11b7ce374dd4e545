"""``squall env up/down`` as a pipeline runs them: stable JSON, idempotent, locked, documented exit codes.

The CLI runs in-process so its engine can be the recording double (the one
function ``squall.infra.driver.engine_for`` is replaced; nothing else)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from squall.cli.main import main
from squall.infra import driver
from squall.locks import StackLock
from tests.infra.engine_double import RecordingEngine

STACKS = Path(__file__).resolve().parents[2] / "stacks"


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    engine = RecordingEngine()
    monkeypatch.setattr(driver, "engine_for", lambda home, backend=None: engine)
    home = tmp_path / "home"

    def invoke(*args: str) -> tuple[int, dict]:
        with pytest.raises(SystemExit) as exited:
            main(["--home", str(home), *args, "--output", "json"])
        out = capsys.readouterr().out
        return exited.value.code, json.loads(out) if out.strip() else {}
    invoke.engine = engine
    invoke.home = home
    return invoke


def test_env_up_is_idempotent_and_down_twice_is_fine(run):
    config = str(STACKS / "Pulumi.zephy.org.main.yaml")
    code, first = run("env", "up", "ci-42", "--stack-file", config)
    assert code == 0 and first["stack"] == "zephy.env.ci-42" and first["state"] == "up"
    assert set(first) == {"env", "stack", "state", "outputs", "expires_at"}
    code, second = run("env", "up", "ci-42", "--stack-file", config)
    assert code == 0 and second["outputs"] == first["outputs"]
    graph = run.engine.graphs["zephy.env.ci-42"]
    assert {r.props.get("metadata", {}).get("squall:stack") for r in graph.of_type(
        "openstack:compute/instance:Instance")} == {"zephy.env.ci-42"}
    assert run("env", "down", "--yes", "ci-42") == (0, {"env": "ci-42", "stack": "zephy.env.ci-42", "state": "destroyed"})
    assert run("env", "down", "--yes", "ci-42") == (0, {"env": "ci-42", "stack": "zephy.env.ci-42", "state": "absent"})
    assert run("env", "down", "--yes", "never-made") == (0, {"env": "never-made", "stack": None, "state": "absent"})
    assert [op for op, _ in run.engine.calls] == ["up", "up", "destroy"]


def test_a_concurrent_run_on_the_same_env_is_refused_with_exit_4(run):
    with StackLock(run.home, "zephy.env.ci-1"):
        code, body = run("env", "up", "ci-1", "--stack-file", str(STACKS / "Pulumi.zephy.org.main.yaml"))
    assert code == 4 and "zephy.env.ci-1 is being changed by pid" in body["error"]
    assert run.engine.calls == []


@pytest.mark.parametrize("content,message", [
    ("config: [1, 2]", "expected a stack file with a 'config:' mapping"),
    ("config: {squall:kind: job}", "squall:kind must be org"),
    ("config: {squall:kind: org, squall:org: {org: x}}", "org.cloud: required field is missing"),
])
def test_bad_config_exits_2_naming_the_problem_and_creates_nothing(run, tmp_path, content, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, body = run("env", "up", "ci-1", "--stack-file", str(bad))
    assert code == 2 and message in body["error"], body
    assert run.engine.calls == [] and not (run.home / "envs").exists()


def test_an_env_name_belongs_to_one_organisation(run):
    run("env", "up", "shared", "--stack-file", str(STACKS / "Pulumi.zephy.org.main.yaml"))
    code, body = run("env", "up", "shared", "--stack-file", str(STACKS / "Pulumi.lab.org.main.yaml"))
    assert code == 2 and "already belongs to zephy.env.shared" in body["error"]


def test_a_never_deployed_organisation_shows_no_vms(run):
    code, status = run("org", "status", "zephy")
    assert code == 0 and status["state"] == "never-deployed" and status["banks"]["cfd"]["slots"] == []
    assert run("org", "up", "zephy")[0] == 0
    assert len(run("org", "status", "zephy")[1]["banks"]["cfd"]["slots"]) == 5


def test_org_up_status_and_pool_scale_as_json(run):
    code, up = run("org", "up", "acme")
    assert code == 0 and up["stack"] == "acme.org.main" and up["state"] == "up" and "head_address" in up["outputs"]
    assert run("pool", "scale", "acme", "gpu-a100", "--size", "0") == (0, {"stack": "acme.org.main",
                                                                           "pool": "gpu-a100", "desired": 0})
    code, status = run("org", "status", "acme")
    assert code == 0 and status["pools"]["gpu-a100"] == {"min": 0, "desired": 0, "max": 50}
    code, body = run("pool", "scale", "acme", "gpu-a100", "--size", "51")
    assert code == 2 and "51 is outside min..max" in body["error"]


def test_bank_claim_starts_a_refill_and_status_counts_it(run, monkeypatch):
    from squall.cli import bank as bank_cli
    from squall.infra.bank import Banks

    refills = []
    monkeypatch.setattr(bank_cli, "spawn_refill", lambda app: lambda stack, bank: refills.append((str(stack), bank)))
    monkeypatch.setattr(Banks, "__init__", _local_probe(Banks.__init__))
    assert run("org", "up", "zephy")[0] == 0
    code, vm = run("bank", "claim", "zephy", "cfd", "--owner", "ana")
    assert code == 0 and vm["state"] == "claimed" and vm["owner"] == "ana"
    assert refills == [("zephy.org.main", "cfd")]
    code, status = run("bank", "status", "zephy", "cfd", "--owner", "ana")
    assert (status["idle"], status["claimed"], status["quota"]["used"]) == (4, 1, 1)
    code, filled = run("bank", "fill", "zephy", "cfd")
    assert code == 0 and filled["added"] == [5] and filled["idle"] == 5


def _local_probe(init):
    """Banks as the CLI builds them, but the reachability check accepts the double's 127.0.0.1 without a port."""
    def patched(self, store, orgs, probe=None, clock=None):
        import time

        init(self, store, orgs, probe=lambda address: address == "127.0.0.1", clock=clock or time.time)
    return patched

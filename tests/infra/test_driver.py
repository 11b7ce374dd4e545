"""The real Automation API adapter, through the real CLI: no Pulumi CLI gives exit 3 and the hint;
a stand-in ``pulumi`` on PATH shows the exact commands, backend and environment Squall passes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

STAND_IN = Path(__file__).with_name("pulumi_stand_in.py")
NO_PULUMI_PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.fixture
def stand_in(tmp_path) -> tuple[dict, Path]:
    """PATH with a stand-in pulumi first, and the file it logs its calls to."""
    bin_dir = tmp_path / "pulumi-root" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(STAND_IN, bin_dir / "pulumi")
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "pulumi-calls.jsonl"
    return {"PATH": f"{bin_dir}:{NO_PULUMI_PATH}", "STAND_IN_LOG": str(log)}, log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def commands(log: Path) -> list[list[str]]:
    return [[a for a in c["argv"] if a != "--non-interactive"] for c in calls(log)]


@pytest.mark.parametrize("argv", [["org", "up", "acme"], ["org", "preview", "zephy"], ["pool", "scale", "acme",
                                  "gpu-a100", "--size", "3"], ["bank", "fill", "zephy", "cfd"]])
def test_without_the_pulumi_cli_every_stack_command_exits_3_with_the_hint(squall, argv):
    proc = squall.run(*argv, env={"PATH": NO_PULUMI_PATH})
    assert proc.returncode == 3, proc.stderr
    assert "the pulumi CLI is not installed" in proc.stderr
    assert "https://www.pulumi.com/docs/install/" in proc.stderr and "never downloads" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_json_mode_reports_the_missing_cli_as_json(squall):
    code, body = squall.json("env", "up", "ci-1", "--stack-file", str(Path(squall.cwd) / "missing.yaml"),
                             env={"PATH": NO_PULUMI_PATH})
    assert code == 2 and "missing.yaml" in body["error"]  # bad input is refused before the CLI is looked for


def test_up_passes_the_stack_backend_and_environment_it_should(squall, stand_in):
    env, log = stand_in
    code, body = squall.json("org", "up", "acme", env=env)
    assert code == 0, body
    assert body == {"outputs": {"head_address": "10.20.0.10"}, "stack": "acme.org.main", "state": "up"}
    ran = commands(log)
    assert ran[0] == ["version"]
    assert ["stack", "select", "--stack", "acme.org.main"] in ran or \
        ["stack", "select", "--create", "--stack", "acme.org.main"] in ran
    assert ["config", "set-all", "--stack", "acme.org.main", "--plaintext", "aws:region=eu-west-1"] in ran
    up = next(c for c in ran if c[0] == "up")
    assert up[:3] == ["up", "--yes", "--skip-preview"] and "auto.inline" in up and up[-2:] == ["--stack",
                                                                                              "acme.org.main"]
    backend = (squall.home / "pulumi").resolve().as_uri()
    for call in calls(log)[1:]:
        assert call["env"]["PULUMI_BACKEND_URL"] == backend
        assert call["env"]["PULUMI_CONFIG_PASSPHRASE"] == ""
        assert call["env"]["PULUMI_HOME"] == str(squall.home / "pulumi-home")
    assert not any(word in c for c in ran for word in ("install", "plugin", "login"))


def test_backend_and_passphrase_come_from_the_options_and_environment(squall, stand_in):
    env, log = stand_in
    proc = squall.run("org", "down", "zephy", "--yes", "--backend", "file:///srv/squall-state",
                      env={**env, "SQUALL_PULUMI_PASSPHRASE": "correct horse"})
    assert proc.returncode == 0, proc.stderr
    ran = commands(log)
    assert ["destroy", "--skip-preview", "--yes"] == next(c for c in ran if c[0] == "destroy")[:3]
    assert ["stack", "rm", "--yes", "zephy.org.main"] == next(c for c in ran if c[:2] == ["stack", "rm"])[:4]
    assert {c["env"]["PULUMI_BACKEND_URL"] for c in calls(log)[1:]} == {"file:///srv/squall-state"}
    assert {c["env"]["PULUMI_CONFIG_PASSPHRASE"] for c in calls(log)[1:]} == {"correct horse"}
    assert "correct horse" not in proc.stderr + proc.stdout


def test_secret_config_without_a_passphrase_is_refused_by_name(squall, stand_in, tmp_path):
    env, log = stand_in
    config = tmp_path / "ci.yaml"
    config.write_text((Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.zephy.org.main.yaml").read_text()
                      + "  openstack:password: {secret_env: OS_PASSWORD}\n")
    proc = squall.run("env", "up", "ci-1", "--stack-file", str(config), env={**env, "OS_PASSWORD": "s3cr3t-value"})
    assert proc.returncode == 3 and "SQUALL_PULUMI_PASSPHRASE" in proc.stderr
    assert "openstack:password" in proc.stderr and "s3cr3t-value" not in proc.stderr
    proc = squall.run("env", "up", "ci-1", "--stack-file", str(config),
                      env={**env, "OS_PASSWORD": "s3cr3t-value", "SQUALL_PULUMI_PASSPHRASE": "pp"})
    assert proc.returncode == 0, proc.stderr
    secret_set = next(c for c in commands(log) if c[:2] == ["config", "set-all"])
    assert "--secret" in secret_set and "openstack:password=s3cr3t-value" in secret_set
    frozen = (squall.home / "envs" / "Pulumi.zephy.env.ci-1.yaml").read_text()
    assert "s3cr3t-value" not in frozen and "secret_env: OS_PASSWORD" in frozen


def test_a_missing_provider_sdk_names_the_extra_to_install():
    from squall.errors import MissingDependency
    from squall.infra.driver import require_sdks

    require_sdks("aws")  # installed by the test extra
    with pytest.raises(MissingDependency, match="need the Python package pulumi-nocloud") as info:
        require_sdks("nocloud")
    assert info.value.hint == "pip install 'squall[nocloud]'"

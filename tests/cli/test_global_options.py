"""-q, -v, --debug and --output before or after the subcommand; with --output json every failure is JSON."""

from __future__ import annotations

import json

import pytest

from squall.cli.global_options import hoist


def test_global_options_move_in_front_and_nothing_after_a_double_dash():
    assert hoist(["job", "list", "-q", "--output", "json", "-vv"]) == ["-q", "--output", "json", "-vv", "job", "list"]
    assert hoist(["job", "run", "s.yaml", "--", "-q"]) == ["job", "run", "s.yaml", "--", "-q"]
    assert hoist(["version", "--output=json"]) == ["--output=json", "version"]


@pytest.mark.parametrize("argv", [["job", "list", "-q"], ["-v", "version"], ["version", "-vv"],
                                  ["job", "list", "--debug"], ["site", "list", "-q", "-v"]])
def test_accepted_before_or_after_the_subcommand(squall, argv):
    proc = squall.run(*argv)
    assert proc.returncode == 0, proc.stderr


# every command, each with a usage error and (where it can) a success; stdout must be JSON either way
COMMANDS = [
    (["job", "list"], 0), (["job", "list", "--limit", "0"], 2), (["job", "list", "--sitee", "x"], 2),
    (["job", "status"], 2), (["job", "status", "nope"], 2), (["job", "logs", "nope"], 2),
    (["job", "run"], 2), (["job", "run", "missing.yaml"], 2), (["job", "cancel", "nope"], 2),
    (["job", "attach", "nope"], 2), (["job", "schema"], 0), (["site", "list"], 0), (["site", "show", "nope"], 2),
    (["site", "add", "x"], 2), (["site", "remove", "nope"], 2), (["site", "check"], 2), (["gc", "--dry-run"], 0),
    (["gc"], 2), (["version"], 0), (["org", "status", "nope"], 2), (["org", "validate", "nope"], 2), (["bank", "status"], 2), (["env", "down"], 2),
    (["nosuchcommand"], 2), (["site", "enrol", "nope"], 2), (["site", "health", "nope"], 2),
    (["site", "unenrol", "nope", "--yes"], 2), (["org", "preview"], 2), (["org", "up", "nope"], 2),
    (["org", "down", "nope", "--yes"], 2), (["pool", "scale", "nope"], 2), (["bank", "fill", "nope"], 2),
    (["bank", "claim", "nope"], 2), (["bank", "release", "nope", "x"], 2), (["env", "up"], 2),
    (["job", "estimate"], 2), (["job", "estimate", "missing.yaml"], 2), (["budget", "show"], 0),
    (["budget", "show", "org:nobody"], 2), (["budget", "set", "org:x", "12"], 2), (["budget", "set", "org:x"], 2),
    (["budget", "topup", "bad scope", "1 EUR"], 2), (["usage"], 0), (["usage", "--since", "yesterday"], 2),
    (["member", "list"], 0), (["member", "remove", "acme", "nobody"], 2), (["member", "set", "acme", "Bad User"], 2), (["member", "set", "acme", "ana", "--tier",
                                                                               "platinum"], 2),
    (["tier", "list"], 0), (["tier", "set", "gold", "zero"], 2), (["quota", "show"], 0),
    (["quota", "show", "team:x"], 2), (["quota", "set", "user:acme/ana", "cpus", "-3"], 2),
    (["token", "list"], 0), (["token", "create", "--user", "Bad User", "--org", "acme"], 2),
    (["token", "revoke", "nope"], 2), (["server", "--port", "0"], 2), (["service", "list"], 0),
    (["service", "set", "cfd-co", "--price", "2 EUR"], 2),
]


def test_the_table_covers_every_command():
    import click

    from squall.cli.main import cli

    def leaves(command: click.Command, path: tuple[str, ...]):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from leaves(sub, (*path, name))
        else:
            yield " ".join(path)

    covered = {" ".join(argv[:2]) if argv[0] in ("job", "site", "org", "pool", "bank", "env", "budget", "member", "tier", "quota",
                                                             "token", "service") else argv[0]
               for argv, _ in COMMANDS}
    assert set(leaves(cli, ())) <= covered


@pytest.mark.parametrize("argv, code", COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_every_command_prints_json_with_output_json(squall, argv, code):
    for args in ([*argv, "--output", "json"], ["--output", "json", *argv]):
        proc = squall.run(*args)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        body = json.loads(proc.stdout)
        if code:
            assert set(body) == {"error", "hint", "exit_code"} and body["exit_code"] == code


def test_logs_as_json(squall, make_spec):
    job_id = squall.json("job", "run", str(make_spec({"name": "j", "split": 2, "command": "echo hi $SQUALL_TASK_INDEX"})))[1]["id"]
    code, one = squall.json("job", "logs", job_id, "--task", "1")
    assert code == 0 and one == {"job": job_id, "task": 1, "stream": "stdout", "log": "hi 1\n"}
    code, every = squall.json("job", "logs", job_id, "--task", "all")
    assert [entry["log"] for entry in every] == ["hi 0\n", "hi 1\n"]


RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def test_instants_are_rfc3339_strings_in_json_and_in_the_report_file(squall, make_spec):
    import re
    from pathlib import Path

    code, report = squall.json("job", "run", str(make_spec({"name": "t", "command": "true"})))
    assert code == 0
    assert re.match(RFC3339, report["created_at"]) and re.match(RFC3339, report["finished_at"])
    (listed,) = squall.json("job", "list")[1]
    assert listed["created_at"] == report["created_at"]
    assert listed["project"] == report["project"] and listed["id"] == report["id"]
    written = json.loads((Path(report["results"]) / "job.json").read_text())
    assert written["created_at"] == report["created_at"]


def test_only_numeric_fields_named_at_are_converted():
    from squall.instants import with_instants

    assert with_instants({"a": [{"expires_at": 0}], "created_at": None, "seen_at": True, "cat": 5}) == {
        "a": [{"expires_at": "1970-01-01T00:00:00Z"}], "created_at": None, "seen_at": True, "cat": 5}

"""Defaults from $XDG_CONFIG_HOME/squall/config.yaml (or --config) and the environment: option > environment >
config file > built-in default; a spec that names its site or project keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


@pytest.fixture
def config(squall):
    path = Path(squall.env["XDG_CONFIG_HOME"]) / "squall" / "config.yaml"
    path.parent.mkdir(parents=True)

    def write(values: dict | str) -> Path:
        path.write_text(values if isinstance(values, str) else yaml.safe_dump(values))
        return path
    return write


def test_config_file_defaults_apply_to_job_run(squall, config, make_spec, tmp_path):
    config({"results": str(tmp_path / "from-config"), "project": "wind", "org": "acme", "output": "json"})
    proc = squall.run("job", "run", str(make_spec({"name": "t", "command": "true"})))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # output: json came from the file
    assert report["results"] == str(tmp_path / "from-config" / report["id"]) and report["project"] == "wind"
    assert squall.query("SELECT org FROM jobs WHERE id = ?", report["id"]) == [("acme",)]
    text = squall.run("job", "list", "--output", "text")  # an option beats the file
    assert text.returncode == 0 and text.stdout.startswith("ID")


def test_environment_beats_the_file_and_the_spec_beats_both(squall, config, make_spec, tmp_path):
    config({"results": str(tmp_path / "from-config"), "project": "wind"})
    spec = make_spec({"name": "t", "command": "true", "project": "mine"})
    code, report = squall.json("job", "run", str(spec), env={"SQUALL_RESULTS": str(tmp_path / "from-env")})
    assert code == 0 and report["results"].startswith(str(tmp_path / "from-env"))
    assert report["project"] == "mine"


def test_the_default_site_applies_only_where_the_spec_names_none(squall, config, make_spec):
    config({"site": "nowhere"})
    code, report = squall.json("job", "run", str(make_spec({"name": "t", "command": "true"})))
    assert code == 2 and "'nowhere' is not a known site" in report["error"]
    named = make_spec({"name": "t", "command": "true", "site": "local"}, folder="named")
    assert squall.json("job", "run", str(named))[0] == 0
    assert squall.json("job", "run", str(make_spec({"name": "t", "command": "true"})), "--site", "local")[0] == 0


def test_config_given_after_the_subcommand_and_through_the_environment(squall, make_spec, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"output": "json"}))
    proc = squall.run("job", "list", "--config", str(other))
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    proc = squall.run("job", "list", env={"SQUALL_CONFIG": str(other)})
    assert proc.returncode == 0 and json.loads(proc.stdout) == []


@pytest.mark.parametrize("content, named", [
    ("resluts: x\n", ["resluts", "did you mean 'results'"]),
    ("org: Acme\n", ["config.yaml: org", "'Acme'"]),
    ("output: yaml\n", ["output"]),
    ("site: [a\n", ["config.yaml", "line 1"]),
    ("- a list\n", ["mapping"]),
])
def test_a_bad_config_file_exits_2_naming_file_and_key(squall, config, content, named):
    config(content)
    code, report = squall.json("job", "list")
    assert code == 2, report
    for text in named:
        assert text in report["error"] + (report["hint"] or ""), report


def test_a_missing_explicit_config_file_exits_2(squall):
    code, report = squall.json("--config", "/nonexistent/squall.yaml", "version")
    assert code == 2 and "--config: /nonexistent/squall.yaml does not exist" in report["error"]
    code, report = squall.json("version", env={"SQUALL_CONFIG": "/nonexistent/squall.yaml"})
    assert code == 2 and "$SQUALL_CONFIG" in report["error"]


def complete(squall, words: str) -> list[str]:
    proc = squall.run(env={"_SQUALL_COMPLETE": "bash_complete", "COMP_WORDS": words,
                           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))})
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if line]


def test_shell_completion_of_job_ids_and_site_names(squall, make_spec):
    assert complete(squall, "squall job status ") == []  # no store yet: nothing, and none is created
    assert not (squall.home / "squall.db").exists()
    job_id = squall.json("job", "run", str(make_spec({"name": "t", "command": "true"})))[1]["id"]
    assert complete(squall, f"squall job logs {job_id[:8]}") == [job_id]
    assert complete(squall, "squall job status zz") == []
    assert complete(squall, "squall site show loc") == ["local"]
    assert "testbed" in complete(squall, "squall site check test")
    assert complete(squall, "squall job run x.yaml --site lo") == ["local"]

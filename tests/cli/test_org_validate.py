"""``squall org validate``: offline (no Pulumi CLI on PATH, no cloud), a gate CI pipelines can use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ORG_FILES = sorted(p.name for p in (REPO / "stacks").glob("Pulumi.*.org.*.yaml"))


def project_copy(tmp_path: Path, stack: str, change) -> dict[str, str]:
    """A project folder whose ``stacks/`` holds a changed copy of one stack file."""
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    for folder in ("roles", "templates", "inventories"):
        (root / folder).symlink_to(REPO / folder)
    document = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    change(document["config"])
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    return {"SQUALL_PROJECT_DIR": str(root), "PATH": "/usr/bin:/bin"}  # no pulumi anywhere


@pytest.mark.parametrize("name", ORG_FILES)
def test_every_organisation_in_stacks_is_clean(squall, name):
    org, _, stack = name.removeprefix("Pulumi.").removesuffix(".yaml").split(".")
    code, report = squall.json("org", "validate", org, "--name", stack, env={"PATH": "/usr/bin:/bin"})
    assert code == 0, report
    assert report["clean"] is True and report["violations"] == []
    assert sum(report["resources"]["org"].values()) > 0
    for item in report["user_data"]:
        assert 0 < item["bytes"] < item["limit"]
    if report["cloud"] != "kubernetes":
        assert report["user_data"] and "job" in report["resources"]  # the largest job stack is checked too


def test_a_20_kb_boot_script_on_aws_is_refused_naming_the_rule(squall, tmp_path):
    def big_script(config: dict) -> None:
        config["squall:org"]["boot_script"] = "#!/bin/sh\n" + "echo twenty kilobytes of boot script\n" * 600

    code, report = squall.json("org", "validate", "acme", env=project_copy(tmp_path, "acme.org.main", big_script))
    assert code == 4
    rules = {(v["rule"], v["resource"]) for v in report["violations"]}
    assert ("user-data-size", "acme-main-head") in rules
    assert all(rule == "user-data-size" for rule, _ in rules)
    text = project_copy(tmp_path / "again", "acme.org.main", big_script)
    proc = squall.run("org", "validate", "acme", env=text)
    assert proc.returncode == 4 and "user-data-size" in proc.stdout


def test_an_invalid_stack_file_exits_2_naming_the_field(squall, tmp_path):
    def bad(config: dict) -> None:
        config["squall:org"]["job_stack"]["nodes"] = 0

    proc = squall.run("org", "validate", "acme", env=project_copy(tmp_path, "acme.org.main", bad))
    assert proc.returncode == 2 and "job_stack.nodes" in proc.stderr
    missing = squall.run("org", "validate", "nobody", "--output", "json")
    assert missing.returncode == 2 and "nobody" in json.loads(missing.stdout)["error"]

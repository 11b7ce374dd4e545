"""``--log-format ecs``: every journal entry a controller writes is one ECS JSON line with its ids."""

from __future__ import annotations

import json


def test_a_jobs_lifecycle_is_logged_as_ecs_lines_with_its_ids(squall, wind_example):
    proc = squall.run("--log-format", "ecs", "job", "run", str(wind_example), "--output", "json",
                      env={"SQUALL_ORG": "acme", "SQUALL_USER": "ana"})
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert lines and all(line["ecs.version"] and line["log.level"] for line in lines)
    mine = [line for line in lines if line.get("labels", {}).get("job_id") == job["id"]]
    phases = [line["labels"]["phase"] for line in mine]
    assert {"up", "stage", "launch", "monitor", "collect", "down", "done"} <= set(phases)
    during = [line for line in mine if line["labels"]["phase"] != "plan"]  # bound once the controller drives it
    assert all(line["organization"]["id"] == "acme" and line["user"]["name"] == "ana" for line in during)
    assert {line["labels"]["task_index"] for line in mine if line["labels"]["event"] == "task"} == {0, 1, 2, 3}


def test_an_unknown_log_format_is_a_usage_error(squall):
    proc = squall.run("--log-format", "xml", "job", "list")
    assert proc.returncode == 2 and "--log-format" in proc.stderr

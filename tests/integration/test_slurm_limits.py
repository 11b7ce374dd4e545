"""A Slurm site's own limits on the real test bed (slurmdbd, AccountingStorageEnforce=associations,limits):
read through the agent at admission, a task above one refused before anything is made, a job that fits
them run in turns, and ``quota show --site`` taking them into each quota's available."""

from __future__ import annotations

from tests.integration.conftest import leftovers


def limit_user(accounting, testbed, cpus: int, max_jobs: int | None = None) -> None:
    """Limit the service account's association (GrpTRES cpu, MaxJobs) for the test; cleared after."""
    limits, cleared = [f"GrpTRES=cpu={cpus}"], ["GrpTRES=cpu=-1"]
    if max_jobs is not None:
        limits.append(f"MaxJobs={max_jobs}")
        cleared.append("MaxJobs=-1")
    accounting.change(("modify", "user", testbed["user"], "set", *limits),
                      ("modify", "user", testbed["user"], "set", *cleared))


def test_a_task_above_the_associations_limit_is_refused_before_anything_is_made(hpc, make_spec, testbed,
                                                                                 slurm_accounting, remote):
    limit_user(slurm_accounting, testbed, cpus=1)
    spec = make_spec({"name": "wide", "command": "true", "resources": {"cpus": 2, "walltime": "00:05:00"}})
    code, answer = hpc.json("job", "estimate", str(spec), "--site", "testbed")
    assert code == 0, answer
    (row,) = answer["sites"]
    assert row["eligible"] is False
    assert ("one task needs 2 cpus, above the limit of 1 (Slurm association user=squall-svc account=squall "
            "GrpTRES cpu)") in row["reason"]
    code, report = hpc.json("job", "run", str(spec), "--site", "testbed")
    assert code == 4 and "GrpTRES cpu" in report["error"], report
    assert hpc.job_count() == 0
    assert leftovers(remote, testbed) == ([], [])


def test_a_job_within_the_limits_runs_in_turns_and_quotas_show_the_sites_limit(hpc, make_spec, testbed,
                                                                               slurm_accounting, tmp_path):
    limit_user(slurm_accounting, testbed, cpus=1, max_jobs=3)
    spec = make_spec({"name": "turns", "split": 3, "command": 'echo "$SQUALL_TASK_INDEX" > "$SQUALL_OUTPUT_DIR/i"',
                      "resources": {"cpus": 1, "walltime": "00:05:00"}})
    code, answer = hpc.json("job", "estimate", str(spec), "--site", "testbed")
    (row,) = answer["sites"]
    assert row["eligible"] is True, row
    limits = {limit["resource"]: limit for limit in row["site_limits"]["limits"]}
    assert (limits["cpus"]["limit"], limits["jobs"]["limit"]) == (1, 3)
    assert row["site_limits"]["tasks_at_once"] == 1
    code, report = hpc.json("job", "run", str(spec), "--site", "testbed", "--results", str(tmp_path / "res"))
    assert code == 0 and report["status"] == "succeeded", report  # Slurm ran the array one task at a time

    assert hpc.json("quota", "set", "user:default/ana", "cpus", "8")[0] == 0
    code, shown = hpc.json("quota", "show", "user:default/ana", "--site", "testbed")
    assert code == 0, shown
    rows = {(r["scope"], r["resource"]): r for r in shown["quotas"]}
    assert rows[("site:testbed", "cpus")]["limit"] == 1
    assert rows[("site:testbed", "cpus")]["source"].endswith("GrpTRES cpu")
    assert rows[("user:default/ana", "cpus")]["limit"] == 8
    assert rows[("user:default/ana", "cpus")]["available"] == 1  # the smaller of its own and the site's
    assert shown["site"]["source"].startswith("scontrol show assoc_mgr")

"""Money on the real test bed: the estimate asks Slurm (sbatch --test-only) and prices by its billing; a budget
that holds exactly 7 maximum costs lets exactly 7 of 20 concurrent ``job run`` through; settlement and usage."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.integration.conftest import leftovers


def test_estimate_asks_slurm_and_prices_by_billing(hpc, make_spec):
    spec = make_spec({"name": "est", "split": 2, "command": "true",
                      "resources": {"cpus": 2, "memory": "3000M", "walltime": "00:10:00"}})
    code, report = hpc.json("job", "estimate", str(spec), "--site", "testbed")
    assert code == 0, report
    (row,) = report["sites"]
    assert row["eligible"] and row["partition"] == "debug"
    assert row["queue_source"].startswith("sbatch --test-only: sbatch: Job") and "to start at" in row["queue_source"]
    # debug bills CPU=1.0,Mem=0.25G: 2 + 3000/1024*0.25 = 2.73 -> 2 units; 2 tasks x 10 min x 0.04 + 0.01
    expected = (Decimal("0.01") + 2 * 2 * Decimal("0.04") / 6).quantize(Decimal("0.01"))
    assert row["cost"]["max"] == {"amount": str(expected), "currency": "credits"}
    assert row["cost"]["price"]["kind"] == "slurm-billing"


def test_budget_admits_exactly_what_it_holds_under_20_concurrent_runs(hpc, make_spec, remote, testbed):
    spec = make_spec({"name": "race", "command": "true", "resources": {"walltime": "00:05:00"}})
    max_cost = hpc.json("job", "estimate", str(spec), "--site", "testbed")[1]["sites"][0]["cost"]["max"]
    assert Decimal(max_cost["amount"]) > 0
    budget = Decimal(max_cost["amount"]) * 7
    assert hpc.run("budget", "set", "org:default", f"{budget} credits").returncode == 0
    runs = [hpc.start("job", "run", str(spec), "--site", "testbed", "--results", "res", "--output", "json")
            for _ in range(20)]
    outcomes = [(proc.wait(timeout=600), proc.stdout.read(), proc.stderr.read()) for proc in runs]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes.count(0) == 7 and codes.count(4) == 13, [(c, e[-300:]) for c, _, e in outcomes]
    for code, out, _ in outcomes:
        if code == 4:
            assert "budget org:default" in json.loads(out)["error"]
    assert hpc.query("SELECT COUNT(*) FROM jobs")[0][0] == 7  # nothing for the refused ones
    code, (state,) = hpc.json("budget", "show", "org:default")
    assert Decimal(state["held"]["amount"]) == 0  # every hold settled
    assert Decimal(state["settled"]["amount"]) <= budget and Decimal(state["available"]["amount"]) >= 0
    code, usage = hpc.json("usage")
    assert code == 0 and len(usage) == 7 and {u["outcome"] for u in usage} == {"succeeded"}
    assert all(Decimal(u["cost"]["actual"]["amount"]) <= Decimal(u["cost"]["estimated_max"]["amount"]) for u in usage)
    assert leftovers(remote, testbed) == ([], [])


def test_a_killed_controllers_hold_is_settled_by_attach(hpc, make_spec):
    from tests.conftest import run_then_kill_9

    hpc.run("budget", "set", "org:default", "100 credits")
    spec = make_spec({"name": "killed", "command": "sleep 5", "resources": {"walltime": "00:05:00"}})
    job_id = run_then_kill_9(hpc, str(spec), "--site", "testbed")
    held = hpc.json("budget", "show", "org:default")[1][0]["held"]["amount"]
    assert Decimal(held) > 0
    proc = hpc.run("job", "attach", job_id, timeout=300)
    assert proc.returncode == 0, proc.stderr
    state = hpc.json("budget", "show", "org:default")[1][0]
    assert Decimal(state["held"]["amount"]) == 0 and Decimal(state["settled"]["amount"]) > 0
    assert [u["job"] for u in hpc.json("usage")[1]] == [job_id]


def test_the_sites_concurrent_job_limit_is_enforced(hpc, make_spec, tmp_path):
    from tests.integration.test_enrol import site_copy

    folder = site_copy(tmp_path, "capped", group_vars={"squall_max_concurrent_jobs": 1})
    assert hpc.run("site", "add", "capped", "--inventory", str(folder)).returncode == 0
    slow = make_spec({"name": "slow", "command": "sleep 30", "resources": {"walltime": "00:05:00"}}, folder="slow")
    first = hpc.start("job", "run", str(slow), "--site", "capped")
    try:
        hpc.wait_for("SELECT id FROM jobs WHERE site = 'capped'", timeout=60)
        code, refused = hpc.json("job", "run", str(slow), "--site", "capped")
        assert code == 4 and "at its limit of 1 (squall_max_concurrent_jobs)" in refused["error"], refused
        assert hpc.query("SELECT COUNT(*) FROM jobs WHERE site = 'capped'")[0][0] == 1
    finally:
        hpc.run("job", "cancel", hpc.query("SELECT id FROM jobs WHERE site = 'capped'")[0][0])
        first.wait(timeout=120)

"""Estimates, dry runs, budgets and usage through the CLI, on the built-in local site."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest


pytestmark = pytest.mark.usefixtures("database")  # the runner on SQLite, and on PostgreSQL


def test_dry_run_prints_the_plan_and_creates_nothing(squall, make_spec):
    spec = make_spec({"name": "dry", "split": 2, "inputs": ["data"], "command": "true"},
                     files={"data/a.txt": "a" * 10, "data/b.txt": "b" * 20})
    code, plan = squall.json("job", "run", str(spec), "--dry-run")
    assert code == 0, plan
    assert plan["site"] == "local" and plan["why"] == "named by default" and plan["bytes_to_stage"] == 30
    assert [t["bytes"] for t in plan["tasks"]] == [20, 10] and plan["batch_script"] is None
    assert plan["estimate"]["cost"]["max"] == {"amount": "0.00", "currency": None}
    assert squall.job_count() == 0 and squall.work_areas() == []
    assert squall.query("SELECT COUNT(*) FROM leases")[0][0] == 0
    text = squall.run("job", "run", str(spec), "--dry-run", "--site", "auto", "--strategy", "greenest")
    assert text.returncode == 0 and "would run on local (greenest: best of 1" in text.stdout
    assert squall.job_count() == 0


def test_estimate_learns_the_likely_run_time_from_history(squall, make_spec):
    spec = make_spec({"name": "hist", "command": "sleep 0.3", "resources": {"walltime": "00:10:00"}})
    before = squall.json("job", "estimate", str(spec))[1]["sites"][0]
    assert before["run_time_s"] == {"bound": 600, "likely": 600,
                                    "likely_source": "no history of this job: the walltime bound"}
    assert squall.json("job", "run", str(spec))[0] == 0
    after = squall.json("job", "estimate", str(spec), "--all")[1]
    (row,) = after["sites"]
    assert row["run_time_s"]["likely"] < 5 and "history: 1 succeeded task" in row["run_time_s"]["likely_source"]
    assert after["choice"] is None  # one site: nothing to choose between


def test_budgets_show_set_and_topup(squall):
    assert squall.json("budget", "set", "org:acme", "10 EUR") == (0, [{
        "scope": "org:acme", "budget": {"amount": "10.00", "currency": "EUR"},
        "settled": {"amount": "0.00", "currency": "EUR"}, "held": {"amount": "0.00", "currency": "EUR"},
        "available": {"amount": "10.00", "currency": "EUR"}}])
    code, (state,) = squall.json("budget", "topup", "org:acme", "2.5 EUR")
    assert code == 0 and state["budget"]["amount"] == "12.50"
    code, error = squall.json("budget", "topup", "org:acme", "1 USD")
    assert code == 2 and "is in EUR" in error["error"]
    proc = squall.run("--output", "json", "budget", "set", "org:acme", "--", "-1 EUR")
    assert proc.returncode == 2 and "below 0" in json.loads(proc.stdout)["error"]
    assert [s["scope"] for s in squall.json("budget", "show")[1]] == ["org:acme"]


def test_one_usage_record_per_job_in_json_and_csv(squall, make_spec):
    ok = make_spec({"name": "ok", "command": "true"}, folder="ok")
    bad = make_spec({"name": "bad", "command": "exit 3"}, folder="bad")
    ids = [squall.json("job", "run", str(ok))[1]["id"], squall.json("job", "run", str(bad))[1]["id"]]
    code, records = squall.json("usage")
    assert code == 0 and [r["job"] for r in records] == ids
    assert [r["outcome"] for r in records] == ["succeeded", "failed"]
    assert records[0]["cost"]["actual"] == {"amount": "0.00", "currency": None}
    assert records[0]["intensity_source"].startswith("Green Algorithms")
    rows = list(csv.DictReader(io.StringIO(squall.run("usage", "--output", "csv").stdout)))
    assert [r["job"] for r in rows] == ids and rows[1]["outcome"] == "failed"
    assert squall.json("usage", "--project", "nobody")[1] == []
    assert json.loads(squall.run("usage", "--since", "2999-01-01", "-o", "json").stdout) == []


def test_the_summary_shows_the_estimate_before_and_the_cost_after(squall, make_spec):
    proc = squall.run("job", "run", str(make_spec({"name": "sum", "command": "true"})))
    assert proc.returncode == 0
    assert "estimate: free, 3600 s (at most 3600 s)" in proc.stderr  # before anything was created (default walltime)
    assert "  cost: free, " in proc.stdout and "(estimated free likely, free at most)" in proc.stdout
    code, report = squall.json("job", "status", squall.query("SELECT id FROM jobs")[0][0])
    assert report["cost"]["actual"] == {"amount": "0.00", "currency": None}
    assert report["cost"]["estimated"]["max"] == {"amount": "0.00", "currency": None}


def test_a_partner_service_price_is_held_and_charged_with_the_platform_share(squall, make_spec):
    spec = make_spec({"name": "app", "command": "true", "service": {"partner": "cfd-co"}})
    assert squall.json("service", "set", "cfd-co", "--price", "3 credits")[0] == 0
    assert squall.json("budget", "set", "project:default/default", "5 credits")[0] == 0
    code, report = squall.json("job", "run", str(spec))
    assert code == 0, report
    (record,) = squall.json("usage")[1]
    assert record["price"]["p_user"] == {"amount": "3.20", "currency": "credits"}  # 0 + 3 + max(0.2, 5 %)
    assert record["price"]["p_zs"] == {"amount": "0.20", "currency": "credits"}
    (state,) = squall.json("budget", "show")[1]
    assert state["settled"]["amount"] == "3.20" and state["held"]["amount"] == "0.00"
    code, refused = squall.json("job", "run", str(spec))
    assert code == 4 and "1.80 credits left" in refused["error"] and "3.20 credits" in refused["error"]
    assert squall.job_count() == 1


def test_only_members_submit_once_an_organisation_has_them(squall, make_spec):
    assert squall.json("member", "set", "default", "ana", "--tier", "free")[0] == 0
    spec = make_spec({"name": "m", "command": "true"})
    code, refused = squall.json("job", "run", str(spec), env={"SQUALL_USER": "bob"})
    assert code == 4 and "'bob' is not a member of organisation 'default'" in refused["error"]
    assert squall.job_count() == 0
    code, report = squall.json("job", "run", str(spec), env={"SQUALL_USER": "ana"})
    assert code == 0 and squall.json("usage")[1][0]["user"] == "ana"


def test_quotas_are_reserved_at_submission_and_shown(squall, make_spec):
    env = {"SQUALL_USER": "ana"}
    assert squall.json("quota", "set", "user:default/ana", "cpus", "3")[0] == 0
    slow = make_spec({"name": "slow", "split": 2, "command": "sleep 20", "resources": {"cpus": 1}}, folder="slow")
    first = squall.start("job", "run", str(slow), env=env)
    try:
        squall.wait_for("SELECT id FROM jobs WHERE phase = 'monitor'", timeout=60)
        code, refused = squall.json("job", "run", str(slow), env=env)
        assert code == 4, refused
        assert "quota user:default/ana cpus: 1 available of 3 (2 used, 0 reserved); this job needs 2" in refused["error"]
        code, states = squall.json("quota", "show", "user:default/ana")
        cpus = next(s for s in states if s["resource"] == "cpus")
        assert cpus == {"scope": "user:default/ana", "resource": "cpus", "default": None, "limit": 3, "used": 2,
                        "reserved": 0, "available": 1}
    finally:
        squall.run("job", "cancel", squall.query("SELECT id FROM jobs ORDER BY created_at")[0][0])
        first.wait(timeout=60)
    assert squall.json("quota", "set", "user:default/ana", "cpus", "none")[1][0]["limit"] is None


def cloud_site(squall, name: str, org: str, more: str = "") -> None:
    """A cloud site (its head is never contacted for an estimate); ``more``: extra inventory lines."""
    folder = squall.cwd / name
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text("all:\n  children:\n    login:\n      hosts:\n        head: {ansible_host: "
                                      "10.250.0.2}\n")
    (folder / "group_vars" / "all.yml").write_text(
        f"squall_kind: cloud\nsquall_scheduler: none\nsquall_org_stack: {org}.org.main\nsquall_work_root: /var/tmp/x\n"
        "ansible_user: squall-svc\nansible_ssh_private_key_file: /etc/hostname\n" + more)
    assert squall.run("site", "add", name, "--inventory", str(folder)).returncode == 0


def test_cloud_jobs_are_priced_by_the_machine_they_get(squall, make_spec):
    cloud_site(squall, "zc", "zephy")
    cloud_site(squall, "ac", "acme")
    plain = make_spec({"name": "p", "command": "true", "split": 4, "resources": {"walltime": "01:00:00"}})
    row = squall.json("job", "estimate", str(plain), "--site", "zc")[1]["sites"][0]
    price = row["cost"]["price"]
    assert (price["kind"], price["per_node_hour"], price["currency"]) == ("nodes", "0.12", "EUR")
    assert "example figures" in price["source"] and price["as_of"] == "2026-11-01"
    gpu = make_spec({"name": "g", "command": "true", "split": 4, "resources": {"walltime": "01:00:00", "gpus": 1}},
                    folder="gpu-job")
    gpu_row = squall.json("job", "estimate", str(gpu), "--site", "zc")[1]["sites"][0]
    assert Decimal(gpu_row["cost"]["price"]["per_node_hour"]) == Decimal("2.40")  # the GPU pool's flavour
    assert Decimal(gpu_row["cost"]["max"]["amount"]) > 10 * Decimal(row["cost"]["max"]["amount"])
    unpriced = squall.json("job", "estimate", str(plain), "--site", "ac")[1]["sites"][0]
    assert unpriced["cost"] == "unpriced"  # acme prices no flavour: never a silent 0


def test_a_spec_never_sets_its_services_price(squall, make_spec):
    """A submitter wrote its own price (42 credits) and the organisation's budget paid it: a spec names a
    registered service, whose price the operator set."""
    forged = make_spec({"name": "forged", "command": "true", "service": {"partner": "cfd-co", "price": "42 credits"}},
                       folder="forged")
    code, refused = squall.json("job", "run", str(forged))
    assert code == 2 and "service.price" in refused["error"] and "squall service set" in refused["error"]
    unknown = make_spec({"name": "unknown", "command": "true", "service": {"partner": "cfd-co"}}, folder="unknown")
    code, refused = squall.json("job", "run", str(unknown))
    assert code == 4 and "'cfd-co' is not a registered service" in refused["error"]
    assert squall.job_count() == 0
    code, said = squall.json("service", "set", "cfd-co", "--price", "2 EUR")
    assert code == 2 and "credits" in said["error"]
    assert squall.json("service", "set", "cfd-co", "--price", "1.50 credits")[0] == 0
    assert squall.json("service", "list")[1] == [{"partner": "cfd-co", "price": {"amount": "1.50",
                                                                                 "currency": "credits"}}]
    code, report = squall.json("job", "run", str(unknown))
    assert code == 0, report
    (record,) = squall.json("usage")[1]
    assert record["price"]["p_zop"] == {"amount": "1.50", "currency": "credits"}

"""Tasks spanning more nodes than a site can give are refused (exit 4) before anything is made."""

from __future__ import annotations

from tests.cli.test_money_cli import cloud_site

WIDE = {"name": "wide", "command": "true", "mpi": True, "split": 2,
        "resources": {"nodes": 3, "tasks_per_node": 2, "walltime": "00:10:00"}}


def test_a_task_wider_than_the_organisations_job_stacks_is_refused(squall, make_spec):
    cloud_site(squall, "zc", "zephy")  # zephy's job stacks have 2 nodes
    spec = make_spec(WIDE)
    proc = squall.run("job", "run", str(spec), "--site", "zc")
    assert proc.returncode == 4, proc.stderr
    assert "a task asks 3 nodes; organisation zephy's job stacks have at most 2" in proc.stderr
    assert squall.job_count() == 0
    code, report = squall.json("job", "estimate", str(spec), "--site", "zc")
    assert code == 0 and report["sites"][0]["eligible"] is False


def test_a_bank_site_runs_one_vm_per_job_and_refuses_a_task_of_two_nodes(squall, make_spec):
    cloud_site(squall, "zb", "zephy", "squall_bank: cfd\n")
    spec = make_spec({**WIDE, "resources": {"nodes": 2, "walltime": "00:10:00"}})
    proc = squall.run("job", "run", str(spec), "--site", "zb")
    assert proc.returncode == 4, proc.stderr
    assert "runs each job on one bank VM; a task asks 2 nodes" in proc.stderr
    assert squall.job_count() == 0


def test_the_summary_says_why_a_task_of_several_processes_was_not_cut_off_the_network():
    from squall.reports import isolation_text as _isolation_text

    assert _isolation_text({"mpi": True}, False) == "no (the task's processes talk over the network)"
    assert _isolation_text({"resources": {"nodes": 2}}, False) == "no (the task's processes talk over the network)"
    assert _isolation_text({"resources": {"cpus": 2}}, False) == "no (not permitted here)"
    assert _isolation_text({}, True) == "yes" and _isolation_text({}, None) == "unknown"

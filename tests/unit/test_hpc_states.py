"""How the hpc site combines the runtime's status with Slurm's state (pure logic)."""

from __future__ import annotations

from squall.sites.executors.slurm import _array_indexes, _task_state


def test_array_index_ranges():
    assert _array_indexes("3") == [3]
    assert _array_indexes("0-3%2") == [0, 1, 2, 3]
    assert _array_indexes("[1,4-5]") == [1, 4, 5]
    assert _array_indexes(None) == [] and _array_indexes("N/A") == []


def test_runtime_status_wins_while_it_is_final():
    status = {"state": "failed", "exit_code": 3, "wall_time": 1.0, "max_rss_kb": 10}
    state = _task_state(0, status, {"JobState": "COMPLETED"}, lost=False)
    assert (state.state, state.exit_code) == ("failed", 3)


def test_slurm_ends_what_the_runtime_could_not_report():
    running = {"state": "running"}
    assert _task_state(0, running, {"JobState": "TIMEOUT"}, lost=False).state == "timeout"
    assert _task_state(0, running, {"JobState": "CANCELLED"}, lost=False).state == "cancelled"
    assert _task_state(0, running, {"JobState": "NODE_FAIL"}, lost=False).state == "failed"
    assert _task_state(0, None, {"JobState": "CANCELLED", "Reason": "None"}, lost=False).state == "cancelled"


def test_queued_running_pending_and_lost():
    assert _task_state(0, None, {"JobState": "PENDING"}, lost=False).state == "queued"
    assert _task_state(0, None, {"JobState": "RUNNING"}, lost=False).state == "running"
    assert _task_state(0, None, None, lost=False).state == "pending"
    assert _task_state(0, None, None, lost=True).state == "failed"


def test_a_refusal_caused_by_the_default_walltime_names_it():
    from types import SimpleNamespace

    import pytest

    from squall.errors import Refused
    from squall.inventory import SiteVars
    from squall.sites.executors.slurm import SlurmExecutor
    from squall.sites.inventories import inventory_kinds
    from squall.spec import Resources

    site_vars = SiteVars.model_validate({
        "squall_kind": "hpc", "squall_scheduler": "slurm", "squall_work_root": "/w",
        "squall_partitions": [{"name": "short", "max_walltime": "00:30:00", "max_cpus_per_task": 4}]},
        context={"kinds": inventory_kinds()})
    executor = SlurmExecutor("centre", [SimpleNamespace()], site_vars, "svc")
    with pytest.raises(Refused) as refused:
        executor.partition_for(SimpleNamespace(spec=SimpleNamespace(resources=Resources())))
    assert "default 01:00:00" in refused.value.hint and "resources.walltime" in refused.value.hint
    with pytest.raises(Refused) as explicit:
        executor.partition_for(SimpleNamespace(spec=SimpleNamespace(resources=Resources(walltime="02:00:00"))))
    assert explicit.value.hint is None


def test_a_silent_slurm_fails_no_task_until_the_tasks_could_no_longer_run(monkeypatch):
    """scontrol failing (slurmctld restarting) says nothing about a task: one without a status file is lost, one
    with a status keeps it; silent past the tasks' walltime and the lease margin, the site is unreachable."""
    from types import SimpleNamespace

    import pytest

    from squall.errors import SiteUnreachable
    from squall.sites.executors.slurm import SlurmExecutor

    monkeypatch.setenv("SQUALL_LEASE_MARGIN", "0")
    answer = {"scheduler": None, "scheduler_silent": "Unable to contact slurm controller", "now": 100.0,
              "jobs": {"/w/squall-j": {"launched_at": 1.0, "tasks": {"1": {"state": "running"}}}}}
    login = SimpleNamespace(agent=lambda *args: answer, job_dir=lambda job_id: f"/w/squall-{job_id}")
    executor = SlurmExecutor("centre", [login], None, "svc")
    monkeypatch.setattr(executor, "max_duration", lambda plan: 30.0)
    plan = SimpleNamespace(job_id="j", tasks=[SimpleNamespace(index=0), SimpleNamespace(index=1)])
    states = executor.poll([plan])["j"]
    assert [s.state for s in states] == ["lost", "running"]
    assert "Unable to contact slurm controller" in states[0].error
    executor.silence.since -= 31
    with pytest.raises(SiteUnreachable, match="Slurm has not answered since"):
        executor.poll([plan])

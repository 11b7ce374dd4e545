"""The Grid Engine executor's own reading of its scheduler: task lists, states, and its batch script."""

from __future__ import annotations

import shutil
import subprocess
from types import SimpleNamespace

import pytest

from squall.job_types import TaskStatus
from squall.sites.executors.gridengine import GridEngineExecutor, _task_ids


@pytest.mark.parametrize(("text", "ids"), [
    ("3", [3]), ("1-4:1", [1, 2, 3, 4]), ("1-7:2", [1, 3, 5, 7]), ("1,4-5:1", [1, 4, 5]), ("", []), (None, []),
    ("x", []),
])
def test_task_lists_as_qstat_prints_them(text, ids):
    assert _task_ids(text) == ids


def test_records_are_read_by_task_from_0_and_states_fill_what_the_runtime_cannot_say():
    executor = GridEngineExecutor("centre", [SimpleNamespace()], None, "svc")
    by_name = executor.tasks_of([
        {"JobId": "7", "JobName": "squall-j", "State": "r", "Tasks": "1"},
        {"JobId": "7", "JobName": "squall-j", "State": "qw", "Tasks": "2-3:1"},
        {"JobId": "8", "JobName": "squall-k", "State": "Eqw", "Tasks": "1"},
    ])
    assert sorted(by_name["squall-j"]) == [0, 1, 2] and by_name["squall-j"][0]["State"] == "r"
    state = executor.task_state
    assert state(0, None, by_name["squall-j"][0], False).state == TaskStatus.RUNNING
    assert state(1, None, by_name["squall-j"][1], False).state == TaskStatus.QUEUED
    failed = state(0, None, by_name["squall-k"][0], False)
    assert failed.state == TaskStatus.FAILED and "could not start" in failed.error
    assert state(3, None, None, False).state == TaskStatus.PENDING
    lost = state(3, None, None, True)
    assert lost.state == TaskStatus.FAILED and "neither Grid Engine nor the runtime" in lost.error
    # the runtime's own status is exact: a task Grid Engine no longer lists kept what it wrote
    done = state(2, {"state": "succeeded", "exit_code": 0}, None, True)
    assert done.state == TaskStatus.SUCCEEDED


def test_the_batch_script_is_an_array_from_1_with_the_queue_h_rt_notify_and_context(tmp_path, store):
    from squall.jobs import new_plan
    from squall.sites.inventories import load_site_inventory
    from squall.spec import load_spec
    from tests.conftest import EXAMPLE
    from squall.project import project_dir

    inventory = load_site_inventory("testbed-gridengine", project_dir() / "inventories" / "testbed-gridengine")
    login = SimpleNamespace(job_dir=lambda job_id: f"/w/squall-{job_id}",
                            runtime=lambda: "/home/svc/.squall/runtime/current/squall_runtime.py")
    executor = GridEngineExecutor("testbed-gridengine", [login], inventory.vars, "squall-svc")
    plan = new_plan(load_spec(EXAMPLE / "job.yaml"), "261123-abcdef", tmp_path, store.store_id)
    text = executor.batch_script(plan, 1_800_000_000)
    for line in ("#$ -N squall-261123-abcdef", "#$ -t 1-4", "#$ -q squall.q", "#$ -l h_rt=00:05:30", "#$ -notify",
                 f"#$ -ac squall-job=261123-abcdef,org={plan.tags['squall:org']},project=wind-energy,"
                 f"store={store.store_id},expires=1800000000"):
        assert line in text.splitlines(), line
    assert 'task-"$((SGE_TASK_ID - 1))"' in text and "-pe" not in text  # one cpu: no parallel environment
    if shutil.which("shellcheck"):
        script = tmp_path / "job.sh"
        script.write_text(text)
        proc = subprocess.run(["shellcheck", "--shell=bash", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


def test_a_spec_with_slurm_options_is_refused_by_name_not_run_without_them(tmp_path, store):
    from squall.errors import Refused
    from squall.jobs import new_plan
    from squall.project import project_dir
    from squall.sites.inventories import load_site_inventory
    from squall.spec import load_spec

    inventory = load_site_inventory("testbed-gridengine", project_dir() / "inventories" / "testbed-gridengine")
    executor = GridEngineExecutor("testbed-gridengine", [SimpleNamespace()], inventory.vars, "squall-svc")
    spec = tmp_path / "job.yaml"
    spec.write_text('name: with-account\ncommand: ["true"]\nslurm: {account: proj-1}\n')
    with pytest.raises(Refused, match="slurm: site 'testbed-gridengine' runs Grid Engine"):
        executor.check(new_plan(load_spec(spec), "261123-abcdef", tmp_path, store.store_id), {})
    spec.write_text('name: plain\ncommand: ["true"]\n')
    executor.check(new_plan(load_spec(spec), "261123-abcdef", tmp_path, store.store_id), {})

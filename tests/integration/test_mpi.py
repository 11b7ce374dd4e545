"""Multi-node MPI tasks on the multi-node Slurm test bed (``testbed up --slurm-nodes 2``): the heat-mpi
example over 2 nodes x 2 ranks equals a serial run of the same solver; a task asking more nodes than any
partition allows is refused before anything is made."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import TESTBED

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "heat-mpi"
TOLERANCE = 1e-12  # stated in examples/heat-mpi/heat.py


@pytest.fixture(scope="session")
def compute_hosts(testbed) -> dict:
    proc = subprocess.run([sys.executable, str(TESTBED), "up", "--slurm-nodes", "2"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["slurm_nodes"]


def serial_solver():
    spec = importlib.util.spec_from_file_location("heat", EXAMPLE / "heat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_heat_over_two_nodes_and_four_ranks_equals_the_serial_run(hpc, compute_hosts, tmp_path):
    example = tmp_path / "heat-mpi"
    shutil.copytree(EXAMPLE, example)
    code, plan = hpc.json("job", "run", str(example / "job.yaml"), "--dry-run")
    assert code == 0, plan
    assert "#SBATCH --nodes=2" in plan["batch_script"] and "#SBATCH --ntasks-per-node=2" in plan["batch_script"]
    code, report = hpc.json("job", "run", str(example / "job.yaml"), "--results", str(tmp_path / "results"))
    assert code == 0 and report["status"] == "succeeded", report
    heat = serial_solver()
    results = sorted((tmp_path / "results" / report["id"]).glob("task-*/plate-*.json"))
    assert len(results) == 4
    for result in results:
        found = json.loads(result.read_text())
        assert found["ranks"] == 4 and found["hosts"] == sorted(compute_hosts), found
        reference = heat.solve(json.loads((EXAMPLE / "cases" / f"{found['case']}.json").read_text()))
        field = [[float(v) for v in line.split(",")] for line in result.with_suffix(".csv").read_text().splitlines()]
        assert len(field) == len(reference)
        assert max(abs(a - b) for row, ref in zip(field, reference) for a, b in zip(row, ref)) <= TOLERANCE


def test_a_task_wider_than_every_partition_is_refused_before_anything_is_made(hpc, compute_hosts, make_spec):
    spec = make_spec({"name": "wide", "command": "true", "mpi": True, "site": "testbed-multi",
                      "resources": {"nodes": 3, "walltime": "00:05:00"}})
    proc = hpc.run("job", "run", str(spec))
    assert proc.returncode == 4, proc.stderr
    assert "multi: at most 2 node(s) per task, not 3" in proc.stderr
    assert hpc.job_count() == 0


def test_heat_over_two_plain_ssh_hosts_equals_the_serial_run_and_leaves_no_key(squall, nodes, tmp_path):
    example = tmp_path / "heat-mpi"
    shutil.copytree(EXAMPLE, example)
    code, report = squall.json("job", "run", str(example / "job.yaml"), "--site", "testbed-nodes",
                               "--results", str(tmp_path / "results"))
    assert code == 0 and report["status"] == "succeeded", report
    heat = serial_solver()
    for result in sorted((tmp_path / "results" / report["id"]).glob("task-*/plate-*.json")):
        found = json.loads(result.read_text())
        assert found["ranks"] == 4 and len(found["hosts"]) == 2 and set(found["hosts"]) <= set(nodes["nodes"])
        reference = heat.solve(json.loads((EXAMPLE / "cases" / f"{found['case']}.json").read_text()))
        field = [[float(v) for v in line.split(",")] for line in result.with_suffix(".csv").read_text().splitlines()]
        assert max(abs(a - b) for row, ref in zip(field, reference) for a, b in zip(row, ref)) <= TOLERANCE
    for name, node in nodes["nodes"].items():  # the job's key and folders are gone from every host
        keys = Path(node["view"]) / "home" / ".ssh" / "authorized_keys"
        assert "squall-job-" not in keys.read_text(), name
        assert list((Path(node["view"]) / "work").glob("squall-*")) == [], name

"""A kind defined in this one file, registered by importing it (an installed plug-in's ``squall.kinds`` entry
point), passes ``site add``, ``site list``, ``job run`` and ``gc`` through the real CLI: nothing else in
Squall names it.

The kind ``lab-test`` is made of existing parts: this machine's transport on a bench folder of its own, the
runtime's slots, nothing provisioned; ``site add NAME --lab-bench FOLDER`` records it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from squall.errors import InvalidInput
from squall.sites.registry import Adder, AddOption, SiteKind, register

REPO = Path(__file__).resolve().parents[2]


def _open(name, home, store, config, inventory):
    from squall.sites.assembled import AssembledSite, SiteTerms
    from squall.sites.executors.slots import SlotsExecutor
    from squall.sites.provisioners.contract import Provisioner
    from squall.sites.transports.local import LocalHost

    hosts = [LocalHost(name, Path(config["bench"]))]
    return AssembledSite(name, "lab-test", store, hosts, SlotsExecutor(name, hosts), Provisioner(), SiteTerms())


def _add(store, name: str, values: dict) -> dict:
    bench = Path(values["bench"])
    if not bench.is_absolute():
        raise InvalidInput(f"--lab-bench {bench}: an absolute folder")
    store.set_site(name, "lab-test", {"bench": str(bench)})
    return {"site": name, "kind": "lab-test", "bench": str(bench)}


register(SiteKind("lab-test", _open, adder=Adder(
    AddOption("--lab-bench", "bench", "lab-test site: the folder its jobs run in.", "FOLDER"), _add,
    lambda name, summary: f"added lab-test site {name} ({summary['bench']})")))


def _plugin(tmp_path: Path) -> dict:
    """An installed plug-in whose ``squall.kinds`` entry point is this module: the environment to run with."""
    dist = tmp_path / "plugin" / "squall_lab_test-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: squall-lab-test\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[squall.kinds]\nlab-test = tests.cli.test_new_kind\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path / "plugin"), str(REPO)])}


def test_a_kind_defined_in_one_file_is_added_listed_run_and_collected(squall, wind_example, tmp_path):
    plugin = _plugin(tmp_path)
    bench = tmp_path / "bench"
    without = squall.run("site", "add", "bench-1", "--lab-bench", str(bench))
    assert without.returncode == 2 and "--lab-bench" in without.stderr  # no plug-in, no such option
    assert squall.run("site", "add", "bench-1", "--lab-bench", "relative", env=plugin).returncode == 2

    code, added = squall.json("site", "add", "bench-1", "--lab-bench", str(bench), env=plugin)
    assert code == 0 and added == {"site": "bench-1", "kind": "lab-test", "bench": str(bench)}
    code, listed = squall.json("site", "list", env=plugin)
    assert code == 0 and {row["site"]: row["kind"] for row in listed}["bench-1"] == "lab-test"

    code, on_bench = squall.json("job", "run", str(wind_example), "--site", "bench-1", "--results", "bench",
                                 env=plugin)
    assert code == 0 and on_bench["site"] == "bench-1" and on_bench["status"] == "succeeded", on_bench
    code, local = squall.json("job", "run", str(wind_example), "--results", "local")
    assert code == 0
    from tests.integration.conftest import checksums

    assert checksums(Path(on_bench["results"])) == checksums(Path(local["results"]))
    assert not list(bench.glob("squall-*"))  # the job's folder is gone once collected

    orphan = bench / "squall-261101-0a0b0c"  # a job folder of this store that no job of it knows
    (orphan / "task-0").mkdir(parents=True)
    code, collected = squall.json("gc", "--yes", env=plugin)
    assert code == 0, collected
    actions = {(a["site"], a["kind"], a["action"]) for a in collected["actions"]}
    assert ("bench-1", "jobdir", "remove") in actions, json.dumps(collected)[:2000]
    assert not orphan.exists()

"""What centres require of a job, on the real Slurm test bed (which enforces associations): account, QoS, extra
sbatch options from the allow-list, set-up lines per site and partition (every word quoted: injection strings
stay text), the variables they set kept for the payload, and the account's associations discovered by the
site check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.integration.conftest import REPO_INVENTORIES

CANARY = "/tmp/squall-options-canary"


def centre(tmp_path: Path) -> Path:
    """The test bed as a centre that requires an account and a QoS, and loads its environment first."""
    folder = tmp_path / "inventories" / "centre"
    shutil.copytree(REPO_INVENTORIES / "testbed", folder)
    path = folder / "group_vars" / "all.yml"
    variables = yaml.safe_load(path.read_text())
    variables["squall_slurm"] = {
        "account": "centre-default", "qos": "normal", "options": ["--requeue"],
        "setup": ["export SITE_MARK=site-loaded", f"echo $(touch {CANARY}) `touch {CANARY}`; touch {CANARY}"],
        "keep_env": ["SITE_MARK", "PART_MARK"]}
    for partition in variables["squall_partitions"]:
        partition["setup"] = [f"export PART_MARK={partition['name']}-loaded"]
    path.write_text(yaml.safe_dump(variables))
    return folder


def add_accounts(accounting, testbed, *accounts: str) -> None:
    """Slurm accounts the service account may charge (the test bed enforces associations)."""
    for account in accounts:
        accounting.change(("add", "account", account, "Cluster=squall-testbed"),
                          ("delete", "account", f"name={account}"))
        accounting.change(("add", "user", testbed["user"], f"Account={account}", "Cluster=squall-testbed"),
                          ("delete", "user", f"name={testbed['user']}", f"account={account}"))


def test_account_qos_options_and_setup_lines_reach_the_batch_script_and_the_payload(hpc, make_spec, tmp_path,
                                                                                     remote, slurm_accounting,
                                                                                     testbed):
    add_accounts(slurm_accounting, testbed, "centre-default", "job-own-account")
    subprocess.run(["rm", "-f", CANARY], check=True)
    remote(f"rm -f {CANARY}", check=False)
    assert hpc.run("site", "add", "centre", "--inventory", str(centre(tmp_path))).returncode == 0
    spec = make_spec({"name": "env", "command": 'printf "%s %s" "$SITE_MARK" "$PART_MARK" > "$SQUALL_OUTPUT_DIR/m"',
                      "resources": {"walltime": "10"},  # ten minutes, Slurm's MM form
                      "slurm": {"account": "job-own-account", "options": ["--mail-type=END,FAIL"]}})
    code, dry = hpc.json("job", "run", str(spec), "--site", "centre", "--dry-run")
    assert code == 0, dry
    script = dry["batch_script"]
    lines = script.splitlines()
    for expected in ("#SBATCH --account=job-own-account", "#SBATCH --qos=normal", "#SBATCH --requeue",
                     "#SBATCH --mail-type=END,FAIL", "export SITE_MARK=site-loaded", "export PART_MARK=debug-loaded",
                     f"echo '$(touch' '{CANARY})' '`touch' '{CANARY}`;' touch {CANARY}"):
        assert expected in lines, (expected, script)
    (tmp_path / "job.sh").write_text(script)
    proc = subprocess.run(["shellcheck", "--shell=bash", str(tmp_path / "job.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    code, report = hpc.json("job", "run", str(spec), "--site", "centre", "--results", str(tmp_path / "res"))
    assert code == 0 and report["status"] == "succeeded", report
    assert (tmp_path / "res" / report["id"] / "task-0" / "m").read_text() == "site-loaded debug-loaded"
    assert not Path(CANARY).exists()  # the injection strings were echo's arguments, nothing ran
    assert remote(f"test -e {CANARY} && echo found || true").stdout.strip() == ""


def test_the_site_check_discovers_the_accounts_associations(hpc, tmp_path, slurm_accounting, testbed):
    add_accounts(slurm_accounting, testbed, "centre-default")
    slurm_accounting.change(("modify", "user", testbed["user"], "where", "account=centre-default", "set",
                             "GrpTRES=cpu=3", "MaxJobs=4"),
                            ("modify", "user", testbed["user"], "where", "account=centre-default", "set",
                             "GrpTRES=cpu=-1", "MaxJobs=-1"))
    assert hpc.run("site", "add", "centre", "--inventory", str(centre(tmp_path))).returncode == 0
    assert hpc.run("site", "check", "centre").returncode == 0
    code, info = hpc.json("site", "show", "centre")
    found = info["discovered"]["slurm_associations"]
    assert found["available"] is True, found
    by_account = {row["account"]: row for row in found["associations"]}
    assert set(by_account) == {"squall", "centre-default"}
    assert by_account["centre-default"]["grptres"] == "cpu=3" and by_account["centre-default"]["maxjobs"] == "4"
    assert "grptres" not in by_account["squall"]  # no limit: the field is left out, not shown empty
    text = hpc.run("site", "show", "centre").stdout
    assert "account centre-default" in text and "grptres cpu=3" in text

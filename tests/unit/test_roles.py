"""The roles' shape: Galaxy layout, documented variables, lint-clean (production profile)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = ["squall_site_check", "squall_runtime", "squall_health", "squall_unenrol"]


@pytest.mark.parametrize("role", ROLES)
def test_role_layout_and_documented_variables(role):
    folder = REPO / "roles" / role
    for part in ("meta/main.yml", "meta/argument_specs.yml", "tasks/main.yml", "tasks/validate.yml"):
        assert (folder / part).is_file(), part
    specs = yaml.safe_load((folder / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
    for name, option in specs["options"].items():
        assert name.startswith("squall_") and option.get("description"), name
    defaults = folder / "defaults" / "main.yml"
    for name in (yaml.safe_load(defaults.read_text()) or {}) if defaults.exists() else {}:
        assert name.startswith(role + "_"), f"{role} default {name} lacks the role prefix"
    tasks = (folder / "tasks" / "main.yml").read_text()
    assert "become" not in tasks, "roles never become root"


def test_roles_pass_ansible_lint_production_profile():
    lint = Path(sys.executable).with_name("ansible-lint")
    proc = subprocess.run([str(lint), "--offline", "--profile", "production", "roles/"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_shipped_inventories_are_valid():
    from squall.sites.inventories import load_site_inventory

    for name in ("testbed", "example-hpc"):
        inventory = load_site_inventory(name, REPO / "inventories" / name)
        assert inventory.layers[0].name == "common"
        assert inventory.vars.squall_partitions

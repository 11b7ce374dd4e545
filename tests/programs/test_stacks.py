"""Every example stack config in stacks/ is a valid organisation design."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from squall.programs.design import design, design_job_stack, load_org

STACKS = sorted((Path(__file__).resolve().parents[2] / "stacks").glob("Pulumi.*.yaml"))


def test_the_examples_cover_aws_openstack_and_kubernetes():
    clouds = {yaml.safe_load(p.read_text())["config"]["squall:org"]["cloud"] for p in STACKS}
    assert clouds == {"aws", "openstack", "kubernetes"}


@pytest.mark.parametrize("path", STACKS, ids=[p.name for p in STACKS])
def test_stack_config_designs(path):
    config = yaml.safe_load(path.read_text())["config"]
    assert config["squall:kind"] == "org"
    cluster = design(load_org(config["squall:org"], source=path.name))
    assert cluster.tags["squall:org"] == config["squall:org"]["org"]
    stack = design_job_stack(cluster, "261124-0a1b2c", now=0)
    assert stack.tags["squall:expires"] == str(stack.expires_at) and stack.nodes >= 1
    assert all(p.tags["managed-by"] == "squall" for p in cluster.pools)

"""Every example stack config in stacks/ is named <org>.<kind>.<name> and is a valid design."""

from __future__ import annotations

from pathlib import Path

import pytest

from squall.errors import InvalidInput, NotFound
from squall.programs.design import design, design_job_stack
from squall.programs.settings import JobStackConfig, OrgStackConfig
from squall.programs.stack_files import load_stack, resolve, squall_config

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")]
                for p in (Path(__file__).resolve().parents[2] / "stacks").glob("Pulumi.*.yaml"))


def test_the_examples_cover_aws_openstack_and_kubernetes_orgs_and_jobs():
    loaded = [load_stack(stack) for stack in STACKS]
    assert {s.org.cloud for s in loaded if isinstance(s, OrgStackConfig)} == {"aws", "openstack", "kubernetes"}
    assert {s.org.cloud for s in loaded if isinstance(s, JobStackConfig)} == {"aws", "openstack", "kubernetes"}


@pytest.mark.parametrize("stack", STACKS)
def test_stack_name_matches_its_config_and_designs(stack):
    org, kind, _name = stack.split(".")
    settings = load_stack(stack)
    assert squall_config(stack)["kind"] == kind and settings.org.org == org
    cluster = design(settings.org)
    assert cluster.tags["squall:org"] == org
    if isinstance(settings, JobStackConfig):
        job = design_job_stack(cluster, settings.job.id, now=settings.job.created_at, nodes=settings.job.nodes)
        assert job.tags["squall:expires"] == str(job.expires_at) and job.nodes >= 1


def test_a_missing_org_stack_is_named():
    with pytest.raises(NotFound, match="stack nobody.org.main"):
        resolve({"kind": "job", "org_stack": "nobody.org.main", "job": {"id": "x", "created_at": 0}}, "test")


def test_a_bad_job_setting_names_the_field():
    raw = {**squall_config("acme.job.example"), "job": {"id": "x", "created_at": -1}}
    with pytest.raises(InvalidInput, match=r"job.created_at"):
        resolve(raw, "Pulumi.acme.job.example.yaml")

"""Organisations up, down, status and pool scaling: real store, real programs, the engine stood in."""

from __future__ import annotations

import pytest

from squall.errors import InvalidInput, SquallError
from squall.infra import records
from tests.infra.conftest import ACME, ZEPHY, silent


def test_up_runs_the_org_program_and_records_outputs(orgs, engine, store):
    outputs = orgs.up(ZEPHY, silent)
    assert engine.calls == [("up", "zephy.org.main")]
    graph = engine.graphs["zephy.org.main"]
    assert {c.type for c in graph.components} == {"squall:cluster:OrgCluster", "squall:pool:GpuNodePool",
                                                   "squall:bank:VmBank"}
    record = records.stack(store, "zephy.org.main")
    assert record.state == "up" and record.outputs == outputs and outputs["pools"] == {"gpu-v100": 3}
    events = [(e.phase, e.event) for e in store.journal()]
    assert events == [("stack", "up"), ("stack", "up-done")]


def test_a_failed_up_is_recorded_and_keeps_no_override(orgs, engine, store):
    engine.fail["up"] = SquallError("pulumi: quota exceeded")
    with pytest.raises(SquallError, match="quota exceeded"):
        orgs.scale(ACME, "gpu-a100", 3, silent)
    record = records.stack(store, "acme.org.main")
    assert record.state == "failed" and record.overrides == {}
    assert [e.event for e in store.journal()][-1] == "up-failed"


@pytest.mark.parametrize("size", [0, 3, 50])
def test_pool_scale_changes_desired_and_applies_it(orgs, engine, store, size):
    orgs.up(ACME, silent)
    orgs.scale(ACME, "gpu-a100", size, silent)
    asg = next(r for r in engine.graphs["acme.org.main"].of_type("aws:autoscaling/group:Group") if "gpu" in r.name)
    assert asg.props["desiredCapacity"] == size
    assert records.stack(store, "acme.org.main").overrides["pool_sizes"] == {"gpu-a100": size}
    assert orgs.status(ACME)["pools"]["gpu-a100"]["desired"] == size
    orgs.up(ACME, silent)  # a later plain up keeps the scaled size
    asg = next(r for r in engine.graphs["acme.org.main"].of_type("aws:autoscaling/group:Group") if "gpu" in r.name)
    assert asg.props["desiredCapacity"] == size


def test_pool_scale_refuses_sizes_outside_the_spec_before_anything_runs(orgs, engine):
    with pytest.raises(InvalidInput, match=r"pool_sizes.gpu-a100: 51 is outside min..max \(0..50\)"):
        orgs.scale(ACME, "gpu-a100", 51, silent)
    with pytest.raises(InvalidInput, match="'gpu-h100' is not a pool of acme"):
        orgs.scale(ACME, "gpu-h100", 1, silent)
    assert engine.calls == []


def test_down_destroys_and_records(orgs, engine, store):
    orgs.up(ZEPHY, silent)
    orgs.down(ZEPHY, silent)
    assert engine.calls[-1] == ("destroy", "zephy.org.main") and engine.stacks() == []
    assert records.stack(store, "zephy.org.main").state == "destroyed"
    assert orgs.status(ZEPHY)["state"] == "destroyed"

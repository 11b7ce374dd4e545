"""The design step: names, tags, counts and subnets, and the specs it refuses."""

from __future__ import annotations

import ipaddress

import pytest

from squall.errors import InvalidInput
from squall.programs.design import design, design_job_stack, load_org

AWS = {
    "org": "acme", "project": "wind", "cloud": "aws", "region": "eu-west-1",
    "availability_zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
    "network": {"cidr": "10.20.0.0/16", "public_subnet": True, "operator_cidrs": ["192.0.2.0/24"]},
    "shared_fs": {"kind": "efs", "size_gb": 500},
    "head_node_flavour": "t3.large",
    "pools": [{"name": "gpu-a100", "instance_type": "p4d.24xlarge", "gpus_per_node": 8,
               "min": 0, "desired": 3, "max": 50, "taints": [{"key": "nvidia.com/gpu", "value": "true"}]}],
    "job_stack": {"nodes": 8, "flavour": "c6i.4xlarge", "ttl_hours": 6},
}
OPENSTACK = {
    "org": "zephy", "cloud": "openstack", "region": "RegionOne", "data_centre": "dc-paris-2",
    "network": {"cidr": "192.168.10.0/24"}, "head_node_flavour": "m1.large",
    "shared_fs": {"kind": "manila", "size_gb": 200},
    "openstack": {"external_network": "public", "known_zones": ["dc-paris-1", "dc-paris-2"],
                  "public_key": "ssh-ed25519 AAAA operator"},
    "banks": [{"name": "cfd", "image": "squall-cfd-2026.10", "flavour": "c2.xlarge", "idle_target": 5,
               "max_size": 20, "max_age_hours": 12}],
}


def error_of(raw: dict) -> str:
    with pytest.raises(InvalidInput) as info:
        design(load_org(raw))
    return info.value.message


def test_aws_names_subnets_and_tags():
    cluster = design(load_org(AWS))
    assert cluster.name == "acme-main"
    assert cluster.zones == ("eu-west-1a", "eu-west-1b", "eu-west-1c")
    private = cluster.private_subnets
    assert [s.name for s in private] == [f"acme-main-private-eu-west-1{z}" for z in "abc"]
    assert [s.cidr for s in cluster.subnets] == ["10.20.0.0/18", "10.20.64.0/18", "10.20.128.0/18", "10.20.192.0/18"]
    assert cluster.subnets[-1].public and not any(s.public for s in private)
    networks = [ipaddress.ip_network(s.cidr) for s in cluster.subnets]
    assert all(a.subnet_of(ipaddress.ip_network("10.20.0.0/16")) for a in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:])
    assert cluster.tags == {"managed-by": "squall", "squall:org": "acme", "squall:project": "wind",
                            "squall:cluster": "main"}
    pool = cluster.pools[0]
    assert pool.name == "acme-main-gpu-a100" and pool.tags["squall:pool"] == "gpu-a100"
    assert (pool.spec.min, pool.spec.desired, pool.spec.max) == (0, 3, 50)


def test_openstack_data_centre_and_bank_metadata():
    cluster = design(load_org(OPENSTACK))
    assert cluster.zones == ("dc-paris-2",)
    assert [(s.cidr, s.zone) for s in cluster.subnets] == [("192.168.10.0/24", "dc-paris-2")]
    bank = cluster.banks[0]
    assert bank.name == "zephy-main-cfd" and bank.tags["squall:bank"] == "cfd"
    assert bank.metadata == {"squall-bank": "cfd", "squall-state": "idle"}
    assert bank.spec.idle_target == 5


def test_job_stack_tags_carry_the_expiry():
    cluster = design(load_org(AWS))
    stack = design_job_stack(cluster, "261124-abc123", now=1_000_000.0)
    assert stack.name == "acme-main-job-261124-abc123" and stack.nodes == 8
    assert stack.tags["squall:job"] == "261124-abc123"
    assert stack.tags["squall:expires"] == str(1_000_000 + 6 * 3600) == str(stack.expires_at)
    assert design_job_stack(cluster, "j1", now=0, nodes=1).nodes == 1
    assert "squall:store" not in stack.tags
    assert design_job_stack(cluster, "j1", now=0, store="0a1b2c3d4e5f").tags["squall:store"] == "0a1b2c3d4e5f"


def test_kubernetes_needs_no_network_and_gets_a_namespace():
    cluster = design(load_org({"org": "lab", "cloud": "kubernetes", "region": "k8s-prod",
                               "pools": [{"name": "gpu", "instance_type": "a100", "gpus_per_node": 4, "max": 8}]}))
    assert cluster.namespace == "squall-lab" and cluster.subnets == ()


@pytest.mark.parametrize("change, message", [
    ({"network": {"cidr": "10.0.0.0/27", "public_subnet": True}}, "network.cidr: 10.0.0.0/27 is too small for 4 subnets"),
    ({"pools": [{"name": "p", "instance_type": "x", "min": 2, "desired": 1, "max": 5}]},
     "pools[0]: desired (1) must be within min..max (2..5)"),
    ({"availability_zones": ["eu-west-1z"]}, "availability_zones[0]: unknown data centre 'eu-west-1z'"),
    ({"availability_zones": [], "data_centre": "mars-1"}, "data_centre: unknown data centre 'mars-1'"),
    ({"region": "moon-1"}, "region: 'moon-1' is not a region Squall knows"),
    ({"network": {"cidr": "8.8.8.0/24"}}, "must be a private IPv4 range"),
    ({"network": {"cidr": "10.0.0.0/16", "operator_cidrs": ["0.0.0.0/0"]}}, "opens SSH to the whole internet"),
    ({"shared_fs": {"kind": "manila"}}, "shared_fs.kind manila is not available on aws"),
    ({"pols": []}, "pols: unknown key; did you mean 'pools'?"),
    ({"banks": [{"name": "b", "image": "i", "flavour": "f", "idle_target": 9, "max_size": 3}]},
     "idle_target (9) exceeds max_size (3)"),
])
def test_impossible_specs_name_the_field(change, message):
    assert message in error_of({**AWS, **change})


def test_openstack_unknown_data_centre():
    assert "data_centre: unknown data centre 'dc-lyon-1'" in error_of({**OPENSTACK, "data_centre": "dc-lyon-1"})

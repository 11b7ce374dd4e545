"""The Pulumi programs, evaluated offline under Pulumi's mocks with the real provider SDK classes.

Every stack file in stacks/ is run through Pulumi.yaml's own entry point; the
captured graph must pass every security rule, and its shape and counts must
follow the config. What this cannot show (a real preview/up, provider-side
validation) is listed in the README.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from squall.errors import InvalidInput
from squall.programs.rules import check, owner_tags
from tests.programs.capture import evaluate_stack, stack_config

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")]
                for p in (Path(__file__).resolve().parents[2] / "stacks").glob("Pulumi.*.yaml"))
COMPONENT_TOKENS = {"squall:cluster:OrgCluster", "squall:pool:GpuNodePool", "squall:bank:VmBank",
                    "squall:job:JobStack"}
ASG = "aws:autoscaling/group:Group"
AWS_INSTANCE = "aws:ec2/instance:Instance"
OS_INSTANCE = "openstack:compute/instance:Instance"


def test_the_examples_cover_every_component_on_every_cloud():
    components = set()
    for stack in STACKS:
        components |= {(c.type, stack.split(".")[0]) for c in evaluate_stack(stack).components}
    assert {token for token, _ in components} == COMPONENT_TOKENS
    assert {org for _, org in components} == {"acme", "zephy", "lab"}


@pytest.mark.parametrize("stack", STACKS)
def test_stack_evaluates_and_passes_every_rule(stack):
    graph = evaluate_stack(stack)
    assert graph.resources, "a stack that declares nothing"
    assert [str(v) for v in check(graph.resources)] == []
    tagged = [owner_tags(r) for r in graph.resources if owner_tags(r) is not None]
    assert tagged and all(tags["squall:stack"] == stack for tags in tagged)  # how gc tells leftovers apart


@pytest.mark.parametrize("stack", STACKS)
def test_components_parent_their_resources_and_derive_names(stack):
    graph = evaluate_stack(stack)
    components = {c.urn: c for c in graph.components}
    assert components and all(c.type in COMPONENT_TOKENS for c in components.values())
    for resource in graph.resources:
        parent = components.get(graph.parents.get(resource.urn, ""))
        assert parent is not None, f"{resource.type} {resource.name} is not a child of a component"
        org_cluster = parent.name.rsplit("-job-", 1)[0]
        assert resource.name.startswith(org_cluster), (resource.name, parent.name)


@pytest.mark.parametrize("stack", [s for s in STACKS if ".job." in s])
def test_job_stacks_carry_their_expiry(stack):
    config = stack_config(stack)
    org = stack_config(config["squall:org_stack"])["squall:org"]
    expires = str(config["squall:job"]["created_at"] + int(org["job_stack"]["ttl_hours"] * 3600))
    graph = evaluate_stack(stack)
    for resource in graph.resources:
        tags = owner_tags(resource)
        if tags is not None:
            assert tags["squall:job"] == config["squall:job"]["id"], resource.name
            assert tags["squall:expires"] == expires, resource.name


@pytest.mark.parametrize("desired", [0, 3, 50])
def test_aws_pool_desired_size_follows_config(desired):
    graph = evaluate_stack("acme.org.main", pool_sizes={"gpu-a100": desired})
    pool = next(g for g in graph.of_type(ASG) if "gpu-a100" in g.name)
    assert (pool.props["minSize"], pool.props["desiredCapacity"], pool.props["maxSize"]) == (0, desired, 50)
    tags = {t["key"]: t for t in pool.props["tags"]}
    assert tags["squall:pool"]["value"] == "gpu-a100" and all(t["propagateAtLaunch"] for t in tags.values())


@pytest.mark.parametrize("desired", [0, 3])
def test_openstack_pool_is_desired_servers_in_an_anti_affinity_group(desired):
    graph = evaluate_stack("zephy.org.main", pool_sizes={"gpu-v100": desired})
    servers = [s for s in graph.of_type(OS_INSTANCE) if s.props["metadata"].get("squall:pool") == "gpu-v100"]
    assert len(servers) == desired
    group = next(g for g in graph.of_type("openstack:compute/serverGroup:ServerGroup") if "gpu-v100" in g.name)
    assert group.props["policies"] == "anti-affinity"
    assert all(s.props["schedulerHints"][0]["group"] == f"{group.name}-id" for s in servers)
    assert all(s.props["flavorName"] == "g1.v100x2" for s in servers)


def test_openstack_pool_of_50_needs_its_max_raised():
    with pytest.raises(InvalidInput, match=r"pool_sizes.gpu-v100: 50 is outside min..max \(0..6\)"):
        evaluate_stack("zephy.org.main", pool_sizes={"gpu-v100": 50})


@pytest.mark.parametrize("desired", [0, 3, 8])
def test_kubernetes_pool_quota_follows_desired_nodes(desired):
    graph = evaluate_stack("lab.org.main", pool_sizes={"gpu": desired})
    quota = graph.of_type("kubernetes:core/v1:ResourceQuota")[0].props["spec"]["hard"]
    assert quota["requests.nvidia.com/gpu"] == str(4 * desired)
    assert quota["requests.cpu"] == str(8 * desired) and quota["requests.memory"] == f"{64 * desired}Gi"
    plugin = graph.of_type("kubernetes:apps/v1:DaemonSet")[0].props["spec"]["template"]["spec"]
    assert plugin["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                      "effect": "NoSchedule"}]


def test_openstack_bank_target_5_idle_servers_with_bank_metadata():
    graph = evaluate_stack("zephy.org.main")
    idle = [s for s in graph.of_type(OS_INSTANCE) if s.props["metadata"].get("squall-bank") == "cfd"]
    assert len(idle) == 5
    assert all(s.props["metadata"]["squall-state"] == "idle" for s in idle)
    assert all(s.props["blockDevices"][0]["uuid"] == "looked-up-squall-cfd-2026.10" for s in idle)
    assert len(evaluate_stack("zephy.org.main", bank_sizes={"cfd": 7}).of_type(OS_INSTANCE)) == \
        len(graph.of_type(OS_INSTANCE)) + 2


def test_aws_bank_is_a_warm_pool_of_the_target_size():
    graph = evaluate_stack("acme.org.main", bank_sizes={"cfd": 5})
    bank = next(g for g in graph.of_type(ASG) if "cfd" in g.name)
    assert bank.props["warmPool"] == {"poolState": "Stopped", "minSize": 5, "maxGroupPreparedCapacity": 5}  # the idle target, not max_size
    assert bank.props["desiredCapacity"] == 0
    assert {t["key"]: t["value"] for t in bank.props["tags"]}["squall-state"] == "idle"


@pytest.mark.parametrize("nodes", [1, 8])
@pytest.mark.parametrize("stack,token", [("acme.job.example", AWS_INSTANCE), ("zephy.job.example", OS_INSTANCE)])
def test_job_nodes_follow_config(stack, token, nodes):
    job = {**stack_config(stack)["squall:job"], "nodes": nodes}
    graph = evaluate_stack(stack, job=job)
    machines = graph.of_type(token)
    assert len(machines) == nodes
    assert len({m.name for m in machines}) == nodes


@pytest.mark.parametrize("nodes", [1, 8])
def test_kubernetes_job_parallelism_follows_nodes_and_completions_tasks(nodes):
    job = {**stack_config("lab.job.example")["squall:job"], "nodes": nodes}
    spec = evaluate_stack("lab.job.example", job=job).of_type("kubernetes:batch/v1:Job")[0].props["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 16, nodes)
    assert spec["activeDeadlineSeconds"] == 2 * 3600 and spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_nat_and_public_subnet_only_when_configured():
    with_public = evaluate_stack("acme.org.main")
    assert with_public.count("aws:ec2/natGateway:NatGateway") == 1
    org = {**stack_config("acme.org.main")["squall:org"]}
    org["network"] = {**org["network"], "public_subnet": False}
    private = evaluate_stack("acme.org.main", org=org)
    assert private.count("aws:ec2/natGateway:NatGateway") == 0
    assert private.count("aws:ec2/internetGateway:InternetGateway") == 0
    head = private.of_type(AWS_INSTANCE)[0]
    assert head.props["associatePublicIpAddress"] is False
    assert [str(v) for v in check(private.resources)] == []


def test_aws_shared_filesystem_is_efs_or_fsx_lustre():
    efs = evaluate_stack("acme.org.main")
    assert efs.of_type("aws:efs/fileSystem:FileSystem")[0].props["encrypted"] is True
    assert efs.count("aws:efs/mountTarget:MountTarget") == 3  # one per zone
    org = {**stack_config("acme.org.main")["squall:org"], "shared_fs": {"kind": "fsx-lustre", "size_gb": 3000}}
    fsx = evaluate_stack("acme.org.main", org=org)
    lustre = fsx.of_type("aws:fsx/lustreFileSystem:LustreFileSystem")[0].props
    assert lustre["storageCapacity"] == 4800 and lustre["deploymentType"] == "SCRATCH_2"
    assert fsx.count("aws:efs/fileSystem:FileSystem") == 0


def test_openstack_cinder_volume_is_exported_by_the_head_node():
    org = {**stack_config("zephy.org.main")["squall:org"], "shared_fs": {"kind": "cinder-nfs", "size_gb": 300}}
    graph = evaluate_stack("zephy.org.main", org=org)
    volume = graph.of_type("openstack:blockstorage/volume:Volume")[0].props
    assert volume["size"] == 300 and volume["volumeType"] == "encrypted"
    head = next(s for s in graph.of_type(OS_INSTANCE) if s.props["metadata"]["squall:role"] == "head")
    volume_name = graph.of_type("openstack:blockstorage/volume:Volume")[0].name
    assert head.props["blockDevices"][1]["uuid"] == f"{volume_name}-id"
    assert "/srv/squall 192.168.10.0/24(rw" in head.props["userData"]
    assert graph.count("openstack:sharedfilesystem/share:Share") == 0


def test_head_node_ssh_only_from_operator_cidrs():
    graph = evaluate_stack("acme.org.main")
    ssh = [r for r in graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
           if r.props.get("fromPort") == 22]
    assert [r.props["cidrIpv4"] for r in ssh] == ["192.0.2.0/24"]


@pytest.mark.parametrize("stack", [s for s in STACKS if s.startswith("lab.")])
def test_kubernetes_objects_match_the_real_schemas(stack):
    for resource in evaluate_stack(stack).resources:
        body = {"apiVersion": resource.props["apiVersion"], "kind": resource.props["kind"],
                **{k: v for k, v in resource.props.items() if k not in ("apiVersion", "kind")}}
        kubernetes_validate.validate(json.loads(json.dumps(body)), "1.30", strict=True)


def test_kubernetes_validation_would_catch_a_misspelled_key():
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
            "spec": {"completionMod": "Indexed", "template": {"spec": {"containers": [], "restartPolicy": "Never"}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(body, "1.30", strict=True)


@pytest.mark.parametrize("stack", [s for s in STACKS if not s.startswith("lab.")])
def test_every_user_data_in_the_graph_is_valid_cloud_config(validators, tmp_path, stack):
    texts = set()
    for resource in evaluate_stack(stack).resources:
        data = resource.props.get("userData")
        if data:
            texts.add(base64.b64decode(data).decode() if "LaunchTemplate" in resource.type else data)
    assert texts
    for index, text in enumerate(sorted(texts)):
        path = tmp_path / f"user-data-{index}.yaml"
        path.write_text(text)
        proc = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert yaml.safe_load(text)["users"][-1]["name"] == "squall"


def test_a_job_stack_without_its_placement_is_refused_by_name():
    with pytest.raises(Exception, match="placement.vpc_id, subnet_ids and ssh_from"):
        evaluate_stack("acme.job.example", placement={"intra_cidr": "10.20.0.0/16"})


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(InvalidInput, match="squall:kind 'cluster' is not one of org, job"):
        evaluate_stack("acme.org.main", kind="cluster")


def test_bank_slots_name_the_servers_and_claimed_ones_say_so():
    graph = evaluate_stack("zephy.org.main", bank_slots={"cfd": [2, 5, 9]}, bank_claimed={"cfd": [5]})
    states = {s.name: s.props["metadata"]["squall-state"] for s in graph.of_type(OS_INSTANCE)
              if s.props["metadata"].get("squall-bank") == "cfd"}
    assert states == {"zephy-main-cfd-vm-2": "idle", "zephy-main-cfd-vm-5": "claimed", "zephy-main-cfd-vm-9": "idle"}
    with pytest.raises(InvalidInput, match=r"bank_claimed.cfd: slots \[7\] are not in the bank"):
        evaluate_stack("zephy.org.main", bank_slots={"cfd": [2]}, bank_claimed={"cfd": [7]})


# --- provider fixes: each would be refused (or misbehave) on the real provider ---------------------

def test_the_nat_gateway_waits_for_the_internet_gateway():
    graph = evaluate_stack("acme.org.main")
    nat = graph.of_type("aws:ec2/natGateway:NatGateway")[0]
    assert graph.depends_on(nat, graph.of_type("aws:ec2/internetGateway:InternetGateway")[0])


def test_fsx_lustre_storage_group_takes_its_own_ports_from_itself_before_the_filesystem():
    org = {**stack_config("acme.org.main")["squall:org"], "shared_fs": {"kind": "fsx-lustre", "size_gb": 3000}}
    graph = evaluate_stack("acme.org.main", org=org)
    storage = next(r for r in graph.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name.endswith("-storage"))
    self_rules = [r for r in graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                  if r.props.get("referencedSecurityGroupId") == f"{storage.name}-id"
                  and r.props.get("securityGroupId") == f"{storage.name}-id"]
    assert sorted((r.props["fromPort"], r.props["toPort"]) for r in self_rules) == [(988, 988), (1018, 1023)]
    lustre = graph.of_type("aws:fsx/lustreFileSystem:LustreFileSystem")[0]
    assert all(graph.depends_on(lustre, rule) for rule in self_rules)


def test_launch_templates_take_the_root_device_from_the_image_lookup():
    graph = evaluate_stack("acme.org.main")
    templates = graph.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert templates
    for template in templates:
        assert [m["deviceName"] for m in template.props["blockDeviceMappings"]] == ["/dev/sda1"]


def test_image_names_and_ids_are_both_looked_up_never_passed_through():
    graph = evaluate_stack("acme.org.main")
    bank = next(t for t in graph.of_type("aws:ec2/launchTemplate:LaunchTemplate") if "cfd" in t.name)
    assert bank.props["imageId"].startswith("looked-up-")  # the stack file says ami-squall-cfd-2026-10
    filters = [a["filters"][0] for token, a in graph.lookups if token == "aws:ec2/getAmi:getAmi"]
    assert {"name": "image-id", "values": ["ami-squall-cfd-2026-10"]} in filters
    assert {"name": "name", "values": ["debian-12-amd64-*"]} in filters


def test_a_changed_boot_script_does_not_replace_the_head_node():
    head = next(r for r in evaluate_stack("acme.org.main").of_type(AWS_INSTANCE) if r.name.endswith("-head"))
    assert not head.props.get("userDataReplaceOnChange")


# --- the job's machines follow its resources ----------------------------------------------------------

def job_stack_for(stack: str, **resources: object):
    job = {**stack_config(stack)["squall:job"], **resources}
    return evaluate_stack(stack, job=job)


def test_a_gpu_job_on_aws_gets_the_gpu_pool_instance_type_and_the_gpu_image():
    graph = job_stack_for("acme.job.example", gpus=1, cpus=8, memory_gib=64)
    nodes = graph.of_type(AWS_INSTANCE)
    assert nodes and {n.props["instanceType"] for n in nodes} == {"p4d.24xlarge"}
    assert {n.props["tags"]["squall:pool"] for n in nodes} == {"gpu-a100"}
    names = [a["filters"][0]["values"][0] for token, a in graph.lookups if token == "aws:ec2/getAmi:getAmi"]
    assert names == ["Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"]
    plain = job_stack_for("acme.job.example")
    assert {n.props["instanceType"] for n in plain.of_type(AWS_INSTANCE)} == {"c6i.4xlarge"}


def test_a_gpu_job_on_openstack_gets_the_gpu_flavour_and_image():
    graph = job_stack_for("zephy.job.example", gpus=2)
    nodes = graph.of_type("openstack:compute/instance:Instance")
    assert {n.props["flavorName"] for n in nodes} == {"g1.v100x2"}
    images = [a["name"] for token, a in graph.lookups if token == "openstack:images/getImage:getImage"]
    assert images == ["debian-12-nvidia"]


@pytest.mark.parametrize("resources, named", [
    ({"gpus": 4}, "4 GPU(s)"),  # zephy's only GPU pool has 2 per node
    ({"cpus": 12}, "cpus (a task asks 12, c2.xlarge has 8)"),
    ({"memory_gib": 48}, "memory_gib (a task asks 48, c2.xlarge has 32)"),
])
def test_a_job_no_machine_fits_is_refused_naming_what_is_missing(resources, named):
    from squall.errors import Refused
    from squall.programs.design import job_machine
    from squall.programs.stack_files import load_stack

    org = load_stack("zephy.org.main").org
    asked = {"cpus": 1, "memory_gib": 2, "gpus": 0, **resources}
    with pytest.raises(Refused, match=re.escape(named)):
        job_machine(org, asked["cpus"], asked["memory_gib"], asked["gpus"])


@pytest.mark.parametrize("stack", ["acme.job.example", "zephy.job.example"])
def test_the_security_groups_and_the_job_node_firewall_agree(stack):
    """In: SSH from the head only, anything from the job's peers; out: the job's peers only. The group says
    peers by group, the firewall (written before any address is known) by the job network: never wider."""
    graph = evaluate_stack(stack)
    placement = stack_config(stack)["squall:placement"]
    node = graph.of_type(AWS_INSTANCE if stack.startswith("acme") else "openstack:compute/instance:Instance")[0]
    document = yaml.safe_load(node.props["userData"])
    rules = base64.b64decode(next(f["content"] for f in document["write_files"]
                                  if f["path"] == "/etc/squall/firewall.nft")).decode()
    inbound, outbound = rules.split("chain output")
    assert re.findall(r"ip saddr (\S+) tcp dport 22 accept", inbound) == placement["ssh_from"]
    assert re.findall(r"ip saddr (\S+) accept", inbound) == [placement["intra_cidr"]]
    assert re.findall(r"ip daddr (\S+) accept", outbound) == [placement["intra_cidr"]]
    assert len(re.findall(r"\baccept\b", rules)) == 6 + len(placement["ssh_from"])  # lo, established: both ways
    if stack.startswith("acme"):
        ingress = [r.props for r in graph.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
        egress = [r.props for r in graph.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
        ssh = [r["cidrIpv4"] for r in ingress if r.get("fromPort") == 22]
        peers_in = [r for r in ingress if r.get("referencedSecurityGroupId") == r["securityGroupId"]]
        assert all(r.get("referencedSecurityGroupId") == r["securityGroupId"] and not r.get("cidrIpv4")
                   for r in egress)
    else:
        os_rules = [r.props for r in graph.of_type("openstack:networking/secGroupRule:SecGroupRule")]
        ssh = [r["remoteIpPrefix"] for r in os_rules if r["direction"] == "ingress" and r.get("portRangeMin") == 22]
        peers_in = [r for r in os_rules if r["direction"] == "ingress" and r.get("remoteGroupId")]
        assert all(r.get("remoteGroupId") and not r.get("remoteIpPrefix")
                   for r in os_rules if r["direction"] == "egress")
    assert ssh == placement["ssh_from"] and len(peers_in) == 1

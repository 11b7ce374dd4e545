"""Each security rule catches a violation: take a clean captured graph, break one thing, see that rule fire.

The same rules run as a CrossGuard pack; the pack's adapter is exercised here
with pulumi-policy's own argument classes (no PolicyPack is built: that starts
a gRPC server).
"""

from __future__ import annotations

import base64
import copy
from dataclasses import replace
from typing import Any, Callable

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, StackValidationArgs

from squall.programs.policy import graph_of, policies
from squall.programs.rules import RULES, Resource, check
from tests.programs.capture import evaluate_stack

GRAPHS: dict[str, list[Resource]] = {}


def graph(stack: str) -> list[Resource]:
    if stack not in GRAPHS:
        GRAPHS[stack] = evaluate_stack(stack).resources
    return GRAPHS[stack]


def broken(stack: str, pick: Callable[[Resource], bool], change: Callable[[dict[str, Any]], None]) -> list[Resource]:
    """The stack's graph with ``change`` applied to the props of the first resource ``pick`` selects."""
    resources = graph(stack)
    target = next(r for r in resources if pick(r))
    props = copy.deepcopy(dict(target.props))
    change(props)
    return [replace(r, props=props) if r is target else r for r in resources]


def fired(resources: list[Resource]) -> set[str]:
    return {v.rule for v in check(resources)}


def is_type(token: str, name_part: str = "") -> Callable[[Resource], bool]:
    return lambda r: r.type == token and name_part in r.name


SG_IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_OUT = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
OS_RULE = "openstack:networking/secGroupRule:SecGroupRule"
AWS_INSTANCE = "aws:ec2/instance:Instance"
OS_INSTANCE = "openstack:compute/instance:Instance"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def test_the_examples_are_clean_to_begin_with():
    for stack in ("acme.org.main", "zephy.org.main", "lab.job.example", "acme.job.example"):
        assert check(graph(stack)) == []


@pytest.mark.parametrize("stack,pick,change", [
    ("acme.org.main", is_type(SG_IN, "head-ssh"), lambda p: p.update(cidrIpv4="0.0.0.0/0")),
    ("acme.org.main", is_type(SG_IN, "compute-intra"),
     lambda p: p.update(cidrIpv6="::/0", referencedSecurityGroupId=None)),
    ("acme.org.main", is_type(SG_IN, "head-ssh"), lambda p: p.update(fromPort=0, toPort=65535)),
    ("acme.job.example", is_type(SG_IN, "ssh-0"), lambda p: p.update(cidrIpv4="203.0.113.0/24")),
    ("zephy.job.example", is_type(OS_RULE, "intra"), lambda p: p.update(remoteGroupId=None)),
], ids=["aws-head-open", "aws-compute-ipv6-open", "aws-head-all-ports", "aws-job-public-ssh", "openstack-no-remote"])
def test_no_open_ingress_catches(stack, pick, change):
    assert "no-open-ingress" in fired(broken(stack, pick, change))


@pytest.mark.parametrize("stack,pick,change", [
    ("acme.org.main", is_type(SG_OUT, "compute-out"), lambda p: p.update(cidrIpv4="0.0.0.0/0")),
    ("acme.job.example", is_type(SG_OUT, "-out"),
     lambda p: p.update(cidrIpv4="8.8.8.8/32", referencedSecurityGroupId=None)),
    ("zephy.job.example", is_type("openstack:networking/secGroup:SecGroup"),
     lambda p: p.update(deleteDefaultRules=False)),
    ("zephy.org.main", is_type(OS_RULE, "compute-out"), lambda p: p.update(remoteIpPrefix="0.0.0.0/0")),
], ids=["aws-compute", "aws-job", "openstack-default-rules", "openstack-compute"])
def test_no_internet_egress_catches(stack, pick, change):
    assert "no-internet-egress" in fired(broken(stack, pick, change))


@pytest.mark.parametrize("stack,pick,change", [
    ("acme.job.example", is_type(AWS_INSTANCE), lambda p: p.update(associatePublicIpAddress=True)),
    ("acme.org.main", is_type(TEMPLATE, "gpu"),
     lambda p: p["networkInterfaces"][0].update(associatePublicIpAddress="true")),
    ("acme.org.main", is_type("aws:ec2/subnet:Subnet", "private"), lambda p: p.update(mapPublicIpOnLaunch=True)),
    ("zephy.org.main", is_type("openstack:networking/floatingIp:FloatingIp"),
     lambda p: p.update(tags=[t.replace("squall:role=head", "squall:role=pool") for t in p["tags"]])),
], ids=["aws-job-node", "aws-pool-template", "aws-private-subnet", "openstack-floating-ip"])
def test_no_public_ips_on_compute_catches(stack, pick, change):
    assert "no-public-ips-on-compute" in fired(broken(stack, pick, change))


@pytest.mark.parametrize("stack,pick,change", [
    ("acme.job.example", is_type(AWS_INSTANCE), lambda p: p["rootBlockDevice"].update(encrypted=False)),
    ("acme.org.main", is_type(TEMPLATE, "gpu"), lambda p: p["blockDeviceMappings"][0]["ebs"].update(encrypted="false")),
    ("acme.org.main", is_type("aws:efs/fileSystem:FileSystem"), lambda p: p.pop("encrypted")),
    ("zephy.job.example", is_type(OS_INSTANCE), lambda p: p["blockDevices"][0].pop("volumeType")),
    ("zephy.org.main", is_type(OS_INSTANCE, "cfd"), lambda p: p.pop("blockDevices")),
], ids=["aws-root", "aws-template", "efs", "openstack-volume-type", "openstack-image-disk"])
def test_volumes_encrypted_catches(stack, pick, change):
    assert "volumes-encrypted" in fired(broken(stack, pick, change))


@pytest.mark.parametrize("stack,pick,change", [
    ("acme.org.main", is_type("aws:ec2/vpc:Vpc"), lambda p: p["tags"].pop("squall:org")),
    ("acme.org.main", is_type("aws:autoscaling/group:Group"), lambda p: p.update(tags=[])),
    ("zephy.org.main", is_type("openstack:networking/network:Network"), lambda p: p.pop("tags")),
    ("acme.job.example", is_type(AWS_INSTANCE), lambda p: p["tags"].pop("squall:expires")),
    ("lab.job.example", is_type("kubernetes:batch/v1:Job"),
     lambda p: p["metadata"]["labels"].pop("app.kubernetes.io/managed-by")),
    ("zephy.job.example", is_type(OS_INSTANCE), lambda p: p["metadata"].update({"squall:expires": "soon"})),
], ids=["aws-vpc", "aws-asg", "openstack-network", "job-without-expiry", "k8s-labels", "bad-expiry"])
def test_owner_tags_catches(stack, pick, change):
    assert "owner-tags" in fired(broken(stack, pick, change))


@pytest.mark.parametrize("stack,pick,change", [
    ("acme.job.example", is_type(AWS_INSTANCE),
     lambda p: p.update(userData=p["userData"] + "\n# password: hunter2hunter2\n")),
    ("acme.org.main", is_type(TEMPLATE, "gpu"), lambda p: p.update(userData=base64.b64encode(
        base64.b64decode(p["userData"]) + b"\nwrite_files: [{content: AKIAABCDEFGHIJKLMNOP}]\n").decode())),
    ("zephy.org.main", is_type(OS_INSTANCE, "head"),
     lambda p: p.update(userData=p["userData"] + "\n-----BEGIN OPENSSH PRIVATE KEY-----\n")),
], ids=["aws-instance", "aws-template-base64", "openstack-private-key"])
def test_no_secrets_in_user_data_catches(stack, pick, change):
    assert "no-secrets-in-user-data" in fired(broken(stack, pick, change))


@pytest.mark.parametrize("stack,pick,change", [
    ("lab.job.example", is_type("kubernetes:batch/v1:Job"),
     lambda p: p["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(privileged=True)),
    ("lab.org.main", is_type("kubernetes:apps/v1:DaemonSet"),
     lambda p: p["spec"]["template"]["spec"]["containers"][0].pop("securityContext")),
    ("lab.job.example", is_type("kubernetes:batch/v1:Job"),
     lambda p: p["spec"]["template"]["spec"].update(hostNetwork=True)),
], ids=["privileged", "may-escalate", "host-network"])
def test_k8s_no_privileged_catches(stack, pick, change):
    assert "k8s-no-privileged" in fired(broken(stack, pick, change))


@pytest.mark.parametrize("change", [
    lambda p: p["spec"].update(policyTypes=["Ingress"]),
    lambda p: p["spec"]["egress"][0]["to"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
    lambda p: p["spec"]["podSelector"].update(matchLabels={"squall.io/job": "another-job"}),
    lambda p: p["metadata"].update(namespace="default"),
], ids=["no-egress-type", "ip-block", "other-pods", "other-namespace"])
def test_k8s_egress_denied_catches(change):
    assert "k8s-egress-denied" in fired(
        broken("lab.job.example", is_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"), change))


def test_k8s_egress_denied_catches_a_missing_policy():
    resources = [r for r in graph("lab.job.example") if "NetworkPolicy" not in r.type]
    assert "k8s-egress-denied" in fired(resources)


SCRIPT_20K = "#!/bin/sh\n" + "echo filling the boot script with twenty kilobytes of shell\n" * 340


def test_user_data_larger_than_ec2_takes_is_caught_on_instances_and_launch_templates():
    on_instance = broken("acme.org.main", is_type(AWS_INSTANCE, "head"),
                         lambda p: p.update(userData=p["userData"] + SCRIPT_20K))
    assert fired(on_instance) == {"user-data-size"}
    on_template = broken("acme.org.main", is_type(TEMPLATE), lambda p: p.update(
        userData=base64.b64encode(base64.b64decode(p["userData"]) + SCRIPT_20K.encode()).decode()))
    assert fired(on_template) == {"user-data-size"}
    # OpenStack takes 64 KB (base64-encoded): the same 20 KB passes there, 60 KB does not
    assert fired(broken("zephy.org.main", is_type(OS_INSTANCE, "head"),
                        lambda p: p.update(userData=p["userData"] + SCRIPT_20K))) == set()
    assert fired(broken("zephy.org.main", is_type(OS_INSTANCE, "head"),
                        lambda p: p.update(userData=p["userData"] + SCRIPT_20K * 3))) == {"user-data-size"}


def test_a_warm_pool_larger_than_its_prepared_capacity_is_caught():
    bad = broken("acme.org.main", is_type("aws:autoscaling/group:Group", "cfd"),
                 lambda p: p["warmPool"].update(minSize=7, maxGroupPreparedCapacity=3))
    assert fired(bad) == {"warm-pool-size"}


def test_every_rule_has_a_negative_test_here():
    tested = {"no-open-ingress", "no-internet-egress", "no-public-ips-on-compute", "volumes-encrypted",
              "owner-tags", "no-secrets-in-user-data", "k8s-no-privileged", "k8s-egress-denied", "user-data-size",
              "warm-pool-size"}
    assert {rule.name for rule in RULES} == tested


def policy_args(resources: list[Resource]) -> StackValidationArgs:
    options = PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                    custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])
    return StackValidationArgs([PolicyResource(r.type, r.props, r.urn, r.name, options, None, None, [], {})
                                for r in resources], None)


def test_the_policy_pack_reports_what_the_rules_find():
    bad = broken("acme.job.example", is_type(AWS_INSTANCE), lambda p: p.update(associatePublicIpAddress=True))
    reports: dict[str, list[str]] = {}
    for policy in policies():
        policy.validate(policy_args(bad), lambda message, urn, name=policy.name: reports.setdefault(name, []).append(
            message))
    assert set(reports) == {"squall-no-public-ips-on-compute"}
    assert "a public address on a job resource" in reports["squall-no-public-ips-on-compute"][0]


def test_the_policy_pack_unwraps_secrets_before_scanning_user_data():
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
              "value": "#cloud-config\n# token: abcdefabcdef\n"}
    [resource] = graph_of(policy_args([Resource(AWS_INSTANCE, "x", {"userData": secret, "tags": {}})]))
    assert resource.props["userData"].startswith("#cloud-config")
    assert "no-secrets-in-user-data" in fired([resource])

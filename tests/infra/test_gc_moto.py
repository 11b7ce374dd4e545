"""``squall gc --force`` against AWS's own APIs: moto in server mode on 127.0.0.1, real boto3 over HTTP.

Leftovers tagged ``managed-by: squall`` whose stack no longer exists (an
instance, its volume and interface, its security group, subnet and VPC) are
all removed, in the order AWS allows; the live stack's resources stay.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from squall.gc.stacks import collect_stacks
from squall.gc.clouds.aws import AwsTaggedInventory
from squall.store import Store

REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def moto(monkeypatch):
    """A moto server for this test only (started and stopped here); boto3 pointed at it."""
    port = free_port()
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.1)
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    yield boto3.client("ec2", region_name=REGION)
    proc.terminate()
    proc.wait(10)


def make_machine(ec2, stack: str, store: str, expires: int | None = None) -> dict[str, str]:
    """A VPC, subnet, security group, instance, extra volume and interface, all tagged as ``stack``'s, made
    by the Squall store ``store`` (expiring at ``expires``)."""
    tags = [{"Key": "managed-by", "Value": "squall"}, {"Key": "squall:stack", "Value": stack},
            {"Key": "squall:store", "Value": store}]
    if expires is not None:
        tags.append({"Key": "squall:expires", "Value": str(expires)})

    def spec(kind: str) -> list[dict]:
        return [{"ResourceType": kind, "Tags": tags}]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=spec("vpc"))["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", TagSpecifications=spec("subnet"))["Subnet"]
    group = ec2.create_security_group(GroupName=f"{stack}-nodes", Description="job nodes", VpcId=vpc,
                                      TagSpecifications=spec("security-group"))["GroupId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"],
                                 SecurityGroupIds=[group], TagSpecifications=spec("instance"))["Instances"][0]
    volume = ec2.create_volume(Size=8, AvailabilityZone=subnet["AvailabilityZone"],
                               TagSpecifications=spec("volume"))["VolumeId"]
    interface = ec2.create_network_interface(SubnetId=subnet["SubnetId"], Groups=[group],
                                             TagSpecifications=spec("network-interface"))["NetworkInterface"]
    return {"vpc": vpc, "subnet": subnet["SubnetId"], "group": group, "instance": instance["InstanceId"],
            "volume": volume, "interface": interface["NetworkInterfaceId"]}


def exists(ec2, kind: str, ident: str) -> bool:
    if kind == "instance":
        found = ec2.describe_instances(InstanceIds=[ident])["Reservations"]
        return bool(found) and found[0]["Instances"][0]["State"]["Name"] != "terminated"
    listing = {"vpc": ("describe_vpcs", "VpcIds", "Vpcs"), "subnet": ("describe_subnets", "SubnetIds", "Subnets"),
               "group": ("describe_security_groups", "GroupIds", "SecurityGroups"),
               "volume": ("describe_volumes", "VolumeIds", "Volumes"),
               "interface": ("describe_network_interfaces", "NetworkInterfaceIds", "NetworkInterfaces")}[kind]
    method, key, answer = listing
    try:
        return bool(getattr(ec2, method)(**{key: [ident]})[answer])
    except ec2.exceptions.ClientError:
        return False


def test_force_removes_every_orphan_in_order_and_keeps_the_live_stacks(moto, engine, store, tmp_path):
    engine.deployed["acme.org.main"] = {"head_address": "10.20.0.10"}
    live = make_machine(moto, "acme.org.main", store.store_id)
    orphan = make_machine(moto, "acme.job.gone", store.store_id)
    listed = collect_stacks(store, engine, tmp_path, inventories=[AwsTaggedInventory(REGION)])
    assert {a.resource.rsplit("/", 1)[-1] for a in listed if a.action == "orphan"} == set(orphan.values())
    assert all(exists(moto, kind, ident) for kind, ident in orphan.items())  # reported only, without --force

    actions = collect_stacks(store, engine, tmp_path, force=True, inventories=[AwsTaggedInventory(REGION)])
    removed = [a for a in actions if a.action == "remove"]
    assert [a.kind for a in removed] == ["ec2:instance", "ec2:volume", "ec2:network-interface",
                                         "ec2:security-group", "ec2:subnet", "ec2:vpc"]
    assert [a for a in actions if a.action == "by-hand"] == []
    assert not any(exists(moto, kind, ident) for kind, ident in orphan.items())
    assert all(exists(moto, kind, ident) for kind, ident in live.items())


def test_a_cloud_that_cannot_be_listed_is_reported_and_the_others_still_collected(moto, engine, store, tmp_path,
                                                                                  monkeypatch):
    orphan = make_machine(moto, "acme.job.gone", store.store_id)
    unreachable = AwsTaggedInventory("us-east-1", client=boto3.client(
        "resourcegroupstaggingapi", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}"))
    actions = collect_stacks(store, engine, tmp_path, force=True,
                             inventories=[unreachable, AwsTaggedInventory(REGION)])
    assert [(a.site, a.action) for a in actions if a.action == "error"] == [("aws:us-east-1", "error")]
    assert not exists(moto, "instance", orphan["instance"]) and not exists(moto, "vpc", orphan["vpc"])


def make_scaling_leftovers(moto, stack: str, store: str, subnet: str) -> dict[str, str]:
    """What the tagging API does not list: an Auto Scaling group (which relaunches what gc terminates), its
    launch template, an elastic IP and a key pair; and a second group whose rule names the machine's group."""
    tags = [{"Key": "managed-by", "Value": "squall"}, {"Key": "squall:stack", "Value": stack},
            {"Key": "squall:store", "Value": store}]
    template = moto.create_launch_template(
        LaunchTemplateName=f"{stack}-pool", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small"},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": tags}])["LaunchTemplate"]["LaunchTemplateId"]
    boto3.client("autoscaling", region_name=REGION).create_auto_scaling_group(
        AutoScalingGroupName=f"{stack}-pool", MinSize=1, MaxSize=2, DesiredCapacity=1, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateId": template},
        Tags=[{**t, "PropagateAtLaunch": True} for t in tags])
    address = moto.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tags}])
    key = moto.create_key_pair(KeyName=f"{stack}-key", TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
    return {"template": template, "group": f"{stack}-pool", "address": address["AllocationId"],
            "key": key["KeyPairId"]}


def scaling_left(moto, made: dict[str, str]) -> dict[str, bool]:
    groups = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups(
        AutoScalingGroupNames=[made["group"]])["AutoScalingGroups"]
    templates = moto.describe_launch_templates(Filters=[{"Name": "launch-template-id", "Values": [made["template"]]}])
    addresses = moto.describe_addresses(Filters=[{"Name": "allocation-id", "Values": [made["address"]]}])
    keys = moto.describe_key_pairs(Filters=[{"Name": "key-pair-id", "Values": [made["key"]]}])
    return {"group": bool(groups), "template": bool(templates["LaunchTemplates"]),
            "address": bool(addresses["Addresses"]), "key": bool(keys["KeyPairs"])}


def test_an_account_shared_by_two_stores_loses_nothing_of_the_other(moto, engine, store, tmp_path):
    """Two stores (their own homes and backends) on one account: --force removes every orphan of this store
    in one pass, and of the other's only what expired, when asked."""
    other = Store(tmp_path / "other-home")
    other_id = other.store_id
    other.close()
    mine = make_machine(moto, "acme.job.gone", store.store_id)
    mine_scaling = make_scaling_leftovers(moto, "acme.job.gone", store.store_id, mine["subnet"])
    theirs_live = make_machine(moto, "acme.job.theirs", other_id, expires=int(time.time()) + 3600)
    theirs_expired = make_machine(moto, "acme.job.theirs-old", other_id, expires=int(time.time()) - 60)
    untagged = make_machine(moto, "acme.job.someone", "")

    actions = collect_stacks(store, engine, tmp_path, force=True, inventories=[AwsTaggedInventory(REGION)])
    assert [a for a in actions if a.action == "by-hand"] == []
    assert not any(exists(moto, kind, ident) for kind, ident in mine.items())
    assert scaling_left(moto, mine_scaling) == {"group": False, "template": False, "address": False, "key": False}
    for machine in (theirs_live, theirs_expired, untagged):
        assert all(exists(moto, kind, ident) for kind, ident in machine.items())
    foreign = {a.resource.rsplit("/", 1)[-1]: a.reason for a in actions if a.action == "foreign"}
    assert set(theirs_live.values()) | set(theirs_expired.values()) | set(untagged.values()) <= set(foreign)
    assert "--include-foreign-expired" in foreign[theirs_expired["instance"]]

    actions = collect_stacks(store, engine, tmp_path, force=True, include_foreign_expired=True,
                             inventories=[AwsTaggedInventory(REGION)])
    assert [a for a in actions if a.action == "by-hand"] == []
    assert not any(exists(moto, kind, ident) for kind, ident in theirs_expired.items())
    assert all(exists(moto, kind, ident) for kind, ident in theirs_live.items())
    assert all(exists(moto, kind, ident) for kind, ident in untagged.items())


def test_a_volume_gone_with_its_instance_and_groups_naming_each_other_go_in_one_pass(moto, engine, store, tmp_path):
    machine = make_machine(moto, "acme.job.gone", store.store_id)
    tags = [{"Key": "managed-by", "Value": "squall"}, {"Key": "squall:stack", "Value": "acme.job.gone"},
            {"Key": "squall:store", "Value": store.store_id}]
    peer = moto.create_security_group(GroupName="gone-peer", Description="peer", VpcId=machine["vpc"],
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
    for source, target in ((peer, machine["group"]), (machine["group"], peer)):
        moto.authorize_security_group_ingress(GroupId=target, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": source}]}])
    inventory = AwsTaggedInventory(REGION)
    listed = inventory.tagged()
    moto.delete_volume(VolumeId=machine["volume"])  # gone before gc reaches it (deleted with its instance)

    class Listed:
        name, removal_order = inventory.name, inventory.removal_order
        tagged = staticmethod(lambda: listed)
        remove = staticmethod(inventory.remove)

    actions = collect_stacks(store, engine, tmp_path, force=True, inventories=[Listed()])
    assert [a for a in actions if a.action == "by-hand"] == []
    assert not exists(moto, "group", peer) and not exists(moto, "vpc", machine["vpc"])

"""gc of stacks: expired job and environment stacks destroyed, leftovers reported (removed with --force)."""

from __future__ import annotations


import pytest
from botocore.stub import Stubber

from squall.errors import SquallError
from squall.infra import records
from squall.gc.clouds.aws import AwsTaggedInventory
from squall.gc.clouds.tagged import TaggedResource
from squall.gc.stacks import collect_stacks

NOW = 1_800_000_000.0


class FakeInventory:
    name = "aws:eu-west-1"
    removal_order = ("ec2:instance", "ec2:volume", "ec2:vpc")

    def __init__(self, resources, refuse=()):
        self.resources, self.removed, self.refuse = list(resources), [], set(refuse)

    def tagged(self):
        return self.resources

    def remove(self, resource):
        if resource.id in self.refuse:
            raise SquallError(f"{resource.id}: remove by hand (DependencyViolation)")
        self.removed.append(resource.id)


@pytest.fixture
def seeded(engine, store):
    ours = store.store_id  # stacks whose record was lost still name their store in their outputs
    engine.deployed.update({
        "acme.org.main": {"head_address": "10.20.0.10"},  # persistent: never collected
        "acme.job.old": {"expires_at": NOW - 60, "store": ours},
        "acme.job.new": {"expires_at": NOW + 3600, "store": ours},
        "acme.env.ci-7": {},
        "lab.job.nothing": {"store": ours},
    })
    records.save_stack(store, "acme.env.ci-7", "acme", "env", "up", expires_at=NOW - 1)
    return engine


def by_resource(actions):
    return {a.resource: (a.action, a.reason) for a in actions}


def test_expired_ephemeral_stacks_are_destroyed_and_journaled(seeded, store, tmp_path):
    actions = by_resource(collect_stacks(store, seeded, tmp_path, now=NOW))
    assert actions["acme.job.old"][0] == "remove" and actions["acme.env.ci-7"][0] == "remove"
    assert actions["acme.job.new"] == ("keep", "expires in 3600 s")
    assert actions["lab.job.nothing"] == ("keep", "no expiry known")
    assert "acme.org.main" not in actions
    assert seeded.stacks() == ["acme.job.new", "acme.org.main", "lab.job.nothing"]
    assert records.stack(store, "acme.env.ci-7").state == "destroyed"
    assert sorted(e.detail["resource"] for e in store.journal() if e.phase == "gc") == ["acme.env.ci-7",
                                                                                       "acme.job.old"]


def test_dry_run_changes_nothing(seeded, store, tmp_path):
    actions = by_resource(collect_stacks(store, seeded, tmp_path, dry_run=True, now=NOW))
    assert actions["acme.job.old"][0] == "remove"
    assert "acme.job.old" in seeded.stacks() and not [e for e in store.journal() if e.phase == "gc"]


def test_a_job_with_a_live_controller_is_kept(seeded, store, tmp_path):
    with store.locks.controller("old"):
        actions = by_resource(collect_stacks(store, seeded, tmp_path, now=NOW))
    assert actions["acme.job.old"] == ("keep", "a controller is driving this job")


def test_another_stores_stacks_are_left_alone_unless_expired_and_asked(engine, store, tmp_path):
    engine.deployed.update({
        "zeta.job.expired": {"expires_at": NOW - 60, "store": "a1b2c3d4e5f6"},
        "zeta.job.live": {"expires_at": NOW + 60, "store": "a1b2c3d4e5f6"},
        "zeta.job.untagged": {"expires_at": NOW - 60},
    })
    actions = by_resource(collect_stacks(store, engine, tmp_path, now=NOW))
    assert {name: action for name, (action, _) in actions.items()} == {
        "zeta.job.expired": "foreign", "zeta.job.live": "foreign", "zeta.job.untagged": "foreign"}
    assert "--include-foreign-expired" in actions["zeta.job.expired"][1]
    assert len(engine.stacks()) == 3
    actions = by_resource(collect_stacks(store, engine, tmp_path, now=NOW, include_foreign_expired=True))
    assert actions["zeta.job.expired"][0] == "remove" and actions["zeta.job.untagged"][0] == "remove"
    assert actions["zeta.job.live"][0] == "foreign"
    assert engine.stacks() == ["zeta.job.live"]


def test_leftovers_are_reported_and_removed_only_with_force(seeded, store, tmp_path):
    mine = {"squall:store": store.store_id}
    inventory = FakeInventory([
        TaggedResource("ec2:instance", "arn:aws:ec2:eu-west-1:1:instance/i-live", {"squall:stack": "acme.org.main"}),
        TaggedResource("ec2:instance", "arn:aws:ec2:eu-west-1:1:instance/i-lost",
                       {"squall:stack": "acme.job.gone", **mine}),
        TaggedResource("ec2:volume", "arn:aws:ec2:eu-west-1:1:volume/vol-1", {"managed-by": "squall", **mine}),
        TaggedResource("ec2:volume", "arn:aws:ec2:eu-west-1:1:volume/vol-2", {"managed-by": "squall"}),
    ])
    actions = by_resource(collect_stacks(store, seeded, tmp_path, now=NOW, inventories=[inventory]))
    assert actions["arn:aws:ec2:eu-west-1:1:instance/i-lost"] == ("orphan", "stack acme.job.gone does not exist here")
    assert actions["arn:aws:ec2:eu-west-1:1:volume/vol-1"] == ("orphan", "no squall:stack tag")
    assert actions["arn:aws:ec2:eu-west-1:1:volume/vol-2"][0] == "foreign"  # no store tag: never taken for ours
    assert "arn:aws:ec2:eu-west-1:1:instance/i-live" not in actions and inventory.removed == []
    collect_stacks(store, seeded, tmp_path, now=NOW, inventories=[inventory], force=True)
    assert sorted(inventory.removed) == ["arn:aws:ec2:eu-west-1:1:instance/i-lost",
                                         "arn:aws:ec2:eu-west-1:1:volume/vol-1"]


def test_a_backend_that_cannot_be_listed_is_reported_not_fatal(store, engine, tmp_path):
    def broken():
        raise SquallError("pulumi: backend unreachable")
    engine.stacks = broken
    [action] = collect_stacks(store, engine, tmp_path, now=NOW)
    assert (action.action, action.reason) == ("error", "pulumi: backend unreachable")


def empty_direct_listings() -> dict:
    """Stubbed EC2 and Auto Scaling clients answering the direct listings with nothing."""
    import boto3

    ec2, groups = (boto3.client(name, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
                   for name in ("ec2", "autoscaling"))
    for client, answers in ((groups, {"describe_auto_scaling_groups": {"AutoScalingGroups": []}}),
                            (ec2, {"describe_launch_templates": {"LaunchTemplates": []},
                                   "describe_addresses": {"Addresses": []}, "describe_key_pairs": {"KeyPairs": []}})):
        stub = Stubber(client)
        for operation, answer in answers.items():
            stub.add_response(operation, answer)
        stub.activate()
    return {"ec2": ec2, "autoscaling": groups}


def test_aws_inventory_lists_tagged_resources_through_the_tagging_api():
    import boto3

    client = boto3.client("resourcegroupstaggingapi", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("get_resources", {"ResourceTagMappingList": [
            {"ResourceARN": "arn:aws:ec2:eu-west-1:1:instance/i-0abc",
             "Tags": [{"Key": "managed-by", "Value": "squall"}, {"Key": "squall:stack", "Value": "acme.job.x"}]},
            {"ResourceARN": "arn:aws:elasticfilesystem:eu-west-1:1:file-system/fs-1",
             "Tags": [{"Key": "managed-by", "Value": "squall"}]}]},
            {"TagFilters": [{"Key": "managed-by", "Values": ["squall"]}]})
        found = AwsTaggedInventory("eu-west-1", client, direct=empty_direct_listings()).tagged()
    assert [(r.kind, r.tags.get("squall:stack")) for r in found] == [("ec2:instance", "acme.job.x"),
                                                                      ("elasticfilesystem:file-system", None)]


class FakeDynamicClient:
    """The kubernetes client's dynamic API, as far as the inventory uses it."""

    def __init__(self, objects):
        from types import SimpleNamespace

        self.objects, self.deleted, self.resources = objects, [], self
        self.item = lambda name, namespace, labels: SimpleNamespace(
            metadata=SimpleNamespace(name=name, namespace=namespace, labels=labels))

    def get(self, api_version, kind):
        from types import SimpleNamespace

        client = self
        return SimpleNamespace(
            get=lambda label_selector: SimpleNamespace(items=[client.item(*o) for o in client.objects.get(kind, [])]
                                                       if label_selector.endswith("=squall") else []),
            delete=lambda name, namespace: client.deleted.append((kind, namespace, name)))


def test_kubernetes_inventory_maps_labels_back_to_squall_tags_and_deletes():
    from squall.gc.clouds.kubernetes import KubernetesTaggedInventory

    labels = {"app.kubernetes.io/managed-by": "squall", "squall.io/stack": "lab.job.gone", "squall.io/job": "gone"}
    live = {**labels, "squall.io/stack": "lab.org.main"}
    client = FakeDynamicClient({"Job": [("lab-main-job-gone", "squall-lab", labels)],
                                "PriorityClass": [("squall-lab-gpu", None, live)]})
    inventory = KubernetesTaggedInventory("labk8s", client=client)
    found = {r.id: r for r in inventory.tagged()}
    assert found["squall-lab/lab-main-job-gone"].tags["squall:stack"] == "lab.job.gone"
    assert found["squall-lab-gpu"].kind == "k8s:scheduling.k8s.io/v1:PriorityClass"
    inventory.remove(found["squall-lab/lab-main-job-gone"])
    assert client.deleted == [("Job", "squall-lab", "lab-main-job-gone")]


def test_openstack_inventory_reads_metadata_and_tags_and_removes_in_order():
    from types import SimpleNamespace as NS

    from squall.errors import Refused
    from squall.gc.clouds.openstack import OpenStackTaggedInventory

    deleted, waited = [], []
    owned = {"managed-by": "squall", "squall:stack": "zephy.job.gone"}
    owned_tags = ["managed-by=squall", "squall:stack=zephy.org.main"]
    conn = NS(
        compute=NS(servers=lambda details: [NS(id="srv-1", metadata=owned), NS(id="srv-2", metadata={})],
                   get_server=lambda ident: NS(id=ident), delete_server=lambda server: deleted.append(server.id),
                   wait_for_delete=lambda server: waited.append(server.id)),
        block_storage=NS(volumes=lambda details: [NS(id="vol-1", metadata=owned)], delete_volume=deleted.append),
        network=NS(networks=lambda tags: [NS(id="net-1", tags=owned_tags)] if tags == "managed-by=squall" else [],
                   routers=lambda tags: [NS(id="rtr-1", tags=owned_tags)], security_groups=lambda tags: [],
                   delete_network=deleted.append))
    inventory = OpenStackTaggedInventory("zephy", connection=conn)
    found = {r.id: r for r in inventory.tagged()}
    assert sorted(found) == ["net-1", "rtr-1", "srv-1", "vol-1"]
    assert found["net-1"].tags["squall:stack"] == "zephy.org.main"
    for ident in ("srv-1", "vol-1", "net-1"):
        inventory.remove(found[ident])
    assert deleted == ["srv-1", "vol-1", "net-1"] and waited == ["srv-1"]  # the server is gone before its volume
    with pytest.raises(Refused, match="remove by hand"):
        inventory.remove(found["rtr-1"])


def test_inventories_follow_the_stacks_and_sites_squall_knows(store, tmp_path):
    from squall.gc.stacks import inventories_for
    from squall.sites.kinds.kubernetes_site import add_kubernetes_site

    records.save_stack(store, "acme.org.main", "acme", "org", "up")
    records.save_stack(store, "zephy.org.main", "zephy", "org", "up")
    records.save_stack(store, "lab.org.main", "lab", "org", "destroyed")
    add_kubernetes_site(store, "labk8s", "lab.org.main", "lab-prod")
    assert [i.name for i in inventories_for(store, tmp_path)] == [
        "aws:eu-west-1", "openstack:OS_* environment", "kubernetes:labk8s"]


def test_force_removes_in_dependency_order_and_one_refusal_does_not_stop_the_rest(engine, store, tmp_path):
    gone = {"managed-by": "squall", "squall:stack": "acme.job.gone", "squall:store": store.store_id}
    inventory = FakeInventory([TaggedResource("ec2:vpc", "vpc-1", gone), TaggedResource("ec2:volume", "vol-1", gone),
                               TaggedResource("ec2:instance", "i-1", gone),
                               TaggedResource("ec2:volume", "vol-2", gone),
                               TaggedResource("ec2:key-pair", "key-1", gone)], refuse={"vol-1"})
    actions = collect_stacks(store, engine, tmp_path, now=NOW, force=True, inventories=[inventory])
    assert inventory.removed == ["i-1", "vol-2", "vpc-1", "key-1"]  # instances, volumes, the network; unknown last
    outcome = by_resource(actions)
    assert outcome["vol-1"] == ("by-hand", "vol-1: remove by hand (DependencyViolation)")
    assert [e.event for e in store.journal() if e.detail.get("resource") == "vol-1"] == ["remove", "by-hand"]


def test_an_expired_job_stack_holding_uncollected_outputs_is_kept_unless_discarded(seeded, store, tmp_path):
    """The job's machines hold outputs never collected (its controller died after launch): past the lease the
    stack stays, reported for 'squall job attach', until the user discards them."""
    import time

    from squall.store import JobRow

    row = JobRow(id="old", name="j", project="p", site="cloud", spec={}, spec_dir="/s", results_dir="/r",
                 phase="monitor", status="running", error=None, cancel_requested=False, network_isolated=None,
                 created_at=time.time(), updated_at=time.time(), finished_at=None, org="acme")
    store.create_job(row, [[], []])
    store.record("old", "launch", "begin")
    store.update_tasks("old", {0: {"status": "succeeded", "outputs": 3}, 1: {"status": "succeeded"}})
    actions = by_resource(collect_stacks(store, seeded, tmp_path, now=NOW))
    assert actions["acme.job.old"][0] == "uncollected" and "squall job attach old" in actions["acme.job.old"][1]
    assert "task(s) 1 " in actions["acme.job.old"][1] and "acme.job.old" in seeded.stacks()
    actions = by_resource(collect_stacks(store, seeded, tmp_path, now=NOW, discard_uncollected=True))
    assert actions["acme.job.old"][0] == "remove" and "discarded" in actions["acme.job.old"][1]
    assert "acme.job.old" not in seeded.stacks()

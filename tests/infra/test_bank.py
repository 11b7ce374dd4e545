"""The idle VM bank: claim/refill arithmetic, max age, release, and atomic claims under concurrency."""

from __future__ import annotations

import multiprocessing

import pytest

from squall.errors import Refused, SquallError
from squall.infra import records
from squall.store import Store
from tests.infra.conftest import ZEPHY, silent

OS_INSTANCE = "openstack:compute/instance:Instance"

pytestmark = pytest.mark.usefixtures("database")  # claims on SQLite, and on a PostgreSQL store shared by hosts


def bank_servers(engine) -> dict[str, str]:
    """The bank's servers in the last applied graph: name -> squall-state."""
    return {r.name: r.props["metadata"]["squall-state"] for r in engine.graphs["zephy.org.main"].of_type(OS_INSTANCE)
            if r.props["metadata"].get("squall-bank") == "cfd"}


def no_refill(stack, bank) -> None:
    return None


@pytest.fixture
def filled(orgs, banks, engine):
    orgs.up(ZEPHY, silent)  # the spec's idle_target: 5 servers, slots 0..4
    assert banks.fill(ZEPHY, "cfd", silent) == {"added": [], "retired": [], "idle": 5, "claimed": 0}
    return banks


def test_fill_adopts_what_org_up_created_and_changes_nothing(filled, engine, store):
    assert engine.calls == [("up", "zephy.org.main")]  # nothing more to apply
    assert [vm.slot for vm in records.bank_vms(store, "zephy", "cfd")] == [0, 1, 2, 3, 4]


def test_claim_hands_out_one_vm_then_the_refill_restores_the_target(filled, engine, store):
    refills = []
    vm = filled.claim(ZEPHY, "cfd", "ana", lambda stack, bank: refills.append((str(stack), bank)))
    assert vm.state == "claimed" and vm.owner == "ana" and vm.address == "127.0.0.1"
    assert refills == [("zephy.org.main", "cfd")]
    assert filled.status(ZEPHY, "cfd", "ana")["idle"] == 4
    result = filled.fill(ZEPHY, "cfd", silent)
    assert result == {"added": [5], "retired": [], "idle": 5, "claimed": 1}
    servers = bank_servers(engine)
    assert len(servers) == 6 and servers[f"zephy-main-cfd-vm-{vm.slot}"] == "claimed"
    status = filled.status(ZEPHY, "cfd", "ana")
    assert (status["target"], status["idle"], status["claimed"]) == (5, 5, 1)
    assert status["quota"] == {"user": "ana", "used": 1, "limit": 2}


def test_the_quota_refuses_a_third_claim(filled):
    filled.claim(ZEPHY, "cfd", "ana", no_refill)
    filled.claim(ZEPHY, "cfd", "ana", no_refill)
    with pytest.raises(Refused, match="ana already holds 2 VM"):
        filled.claim(ZEPHY, "cfd", "ana", no_refill)
    filled.claim(ZEPHY, "cfd", "ben", no_refill)  # someone else still can


def test_an_empty_bank_refuses_and_still_triggers_the_refill(filled):
    refills = []
    for owner in ("a", "b", "c", "d", "e"):
        filled.claim(ZEPHY, "cfd", owner, no_refill)
    with pytest.raises(Refused, match="no idle VM right now"):
        filled.claim(ZEPHY, "cfd", "f", lambda stack, bank: refills.append(bank))
    assert refills == ["cfd"]


def test_an_unreachable_vm_is_retired_and_the_next_one_handed_out(filled, banks, store):
    first = records.bank_vms(store, "zephy", "cfd")[0]
    banks.probe = lambda address, tries=[]: bool(tries) or tries.append(1)  # the first probe fails
    vm = filled.claim(ZEPHY, "cfd", "ana", no_refill)
    assert vm.id != first.id
    assert first.id not in {v.id for v in records.bank_vms(store, "zephy", "cfd")}


def test_vms_past_max_age_are_replaced_and_lapsed_claims_retired(filled, engine, clock, store):
    vm = filled.claim(ZEPHY, "cfd", "ana", no_refill, hours=1)
    clock.now += 13 * 3600  # max_age_hours is 12; the claim lapsed after 1 h
    result = filled.fill(ZEPHY, "cfd", silent)
    assert len(result["retired"]) == 5 and vm.id in result["retired"]
    assert result["added"] == [5, 6, 7, 8, 9] and result["claimed"] == 0
    assert sorted(bank_servers(engine)) == [f"zephy-main-cfd-vm-{slot}" for slot in range(5, 10)]


def test_release_destroys_the_vm_and_refills(filled, engine, store):
    vm = filled.claim(ZEPHY, "cfd", "ana", no_refill)
    with pytest.raises(Refused, match="claimed by ana, not ben"):
        filled.release(ZEPHY, "cfd", vm.id, "ben", silent)
    result = filled.release(ZEPHY, "cfd", vm.id, "ana", silent)
    assert result["added"] == [5] and result["idle"] == 5
    assert f"zephy-main-cfd-vm-{vm.slot}" not in bank_servers(engine)
    assert [e.event for e in store.journal() if e.phase == "bank"] == ["claim", "release", "fill", "fill-done"]


def test_a_failed_fill_changes_nothing_in_the_store(filled, engine, store):
    filled.claim(ZEPHY, "cfd", "ana", no_refill)
    before = records.bank_vms(store, "zephy", "cfd")
    engine.fail["up"] = SquallError("pulumi: flavour not found")
    with pytest.raises(SquallError):
        filled.fill(ZEPHY, "cfd", silent)
    assert records.bank_vms(store, "zephy", "cfd") == before


def _claim_in_another_process(home: str, owner: str, results) -> None:
    store = Store(home)
    vm = records.claim_bank_vm(store, "zephy", "cfd", owner, expires_at=2e9, quota=2)
    results.put((owner, vm.id if vm else None))
    store.close()


@pytest.mark.parametrize("owners", [[f"user{i}" for i in range(20)], ["ana"] * 20], ids=["20-users", "one-user"])
def test_20_concurrent_claims_never_share_a_vm_or_pass_the_quota(filled, store, owners):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_claim_in_another_process, args=(str(store.home), o, results)) for o in owners]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    got = [results.get(timeout=10) for _ in workers]
    granted = [vm_id for _, vm_id in got if vm_id is not None]
    assert len(granted) == len(set(granted))
    assert len(granted) == (5 if len(set(owners)) > 1 else 2)
    claimed = records.bank_vms(store, "zephy", "cfd", ("claimed",))
    assert sorted(vm.id for vm in claimed) == sorted(granted)


def test_claims_on_aws_banks_are_refused_plainly(orgs, banks):
    from tests.infra.conftest import ACME

    orgs.up(ACME, silent)
    with pytest.raises(Refused, match="claims on AWS banks are not supported yet"):
        banks.claim(ACME, "cfd", "ana", no_refill)


def test_an_empty_bank_says_try_again_only_when_a_refill_can_run(filled, engine):
    from squall.errors import ExitCode, MissingDependency

    for index in range(5):
        filled.claim(ZEPHY, "cfd", f"user{index}", no_refill)
    with pytest.raises(Refused, match="try again shortly|no idle VM"):
        filled.claim(ZEPHY, "cfd", "late", no_refill)
    engine.missing = "the pulumi CLI is not installed (cloud stacks need it)"
    with pytest.raises(MissingDependency, match="no refill can run here: the pulumi CLI is not installed") as raised:
        filled.claim(ZEPHY, "cfd", "late", no_refill)
    assert raised.value.exit_code == ExitCode.MISSING_DEPENDENCY


@pytest.mark.parametrize("after_job, state_after", [("release", "retired"), ("recycle", "idle")])
def test_a_job_on_a_bank_vm_hands_it_back_as_the_bank_says(filled, store, engine, make_spec, tmp_path, monkeypatch,
                                                            after_job, state_after):
    import time

    from squall.jobs import new_plan
    from squall.sites.provisioners.bank import BankProvisioner
    from squall.spec import load_spec

    provisioner = BankProvisioner("zbank", store, ZEPHY, "cfd", filled, "squall", "/home/squall/work")
    spec = filled.spec(ZEPHY, "cfd").model_copy(update={"after_job": after_job})
    monkeypatch.setattr(provisioner, "_spec", lambda: spec)
    plan = new_plan(load_spec(make_spec({"name": "b", "command": "true"})), "261201-bank01", tmp_path, store.store_id)
    monkeypatch.setattr(store, "job", lambda job_id: None)  # no job row needed: the owner defaults

    def claim(kind, resource):
        store.add_lease(plan.job_id, "zbank", kind, resource, {}, time.time() + 3600)
    provisioner.up(plan, claim)
    held = provisioner.nodes(plan)
    assert held["addresses"] == ["127.0.0.1"] and held["job_user"] == "squall"
    vm_id = int(store.leases(job_id=plan.job_id)[0].resource.rsplit("/", 1)[1])
    provisioner.up(plan, claim)  # a resumed controller keeps the VM it holds
    assert len(store.leases(job_id=plan.job_id)) == 1
    provisioner.down(plan)
    states = {vm.id: vm.state for vm in records.bank_vms(store, "zephy", "cfd", ("idle", "claimed", "retired"))}
    assert states[vm_id] == state_after
    assert provisioner.has_nodes(plan) is False

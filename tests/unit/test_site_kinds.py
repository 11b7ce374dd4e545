"""The one registry of site kinds: a new kind is its module plus one registration, nothing else."""

from __future__ import annotations

import pytest

from squall.sites import registry
from squall.errors import InvalidInput, Refused
from squall.sites.registration import builtin_sites, check_site_name, open_site, open_sites
from squall.sites.registry import SiteKind
from squall.sites.assembled import AssembledSite, SiteTerms
from squall.sites.transports.local import LocalHost
from squall.sites.provisioners.contract import Provisioner
from squall.sites.executors.slots import SlotsExecutor


def _open_lab(name, home, store, config, inventory):
    """A kind made of existing parts: this machine's transport, runtime slots, nothing provisioned."""
    hosts = [LocalHost(name, home / "lab" / name)]
    return AssembledSite(name, "lab-test", store, hosts, SlotsExecutor(name, hosts), Provisioner(), SiteTerms())


@pytest.fixture
def extra_kind():
    registry.register(SiteKind("lab-test", _open_lab))
    yield
    del registry.KINDS["lab-test"]


def test_a_registered_kind_is_opened_and_collected_without_any_other_change(store, tmp_path, extra_kind):
    store.set_site("bench-1", "lab-test", {})
    site = open_site("bench-1", tmp_path / "home", store)
    assert site.kind == "lab-test" and site.name == "bench-1"
    opened, broken = open_sites(tmp_path / "home", store)
    assert sorted(s.name for s in opened) == ["bench-1", "local"] and broken == []


def test_built_in_sites_and_auto_are_reserved_names():
    assert builtin_sites() == {"local": "local"}
    for name in ("local", "auto"):
        with pytest.raises(InvalidInput, match="reserved"):
            check_site_name(name)
    check_site_name("my-cluster")


def test_a_kind_this_version_cannot_run_is_refused_by_name(store, tmp_path):
    store.set_site("old", "pbs", {})
    with pytest.raises(Refused, match="a pbs site"):
        open_site("old", tmp_path / "home", store)
    assert [s.name for s in open_sites(tmp_path / "home", store)[0]] == ["local"]


def test_an_inventory_follows_the_rules_its_kind_registered(tmp_path):
    """A kind's rules live in its kind file: a kind registered here (its hosts in its own group, a rule of its
    own) is read from an inventory under them; a kind nobody registered is named with the ones that are."""
    import shutil
    from pathlib import Path

    from squall.inventory import InventoryRules, no_scheduler
    from squall.sites.inventories import load_site_inventory

    def check(site_vars):
        no_scheduler(site_vars, "lab-inv")

    folder = tmp_path / "lab"
    shutil.copytree(Path(__file__).resolve().parents[2] / "inventories" / "testbed", folder)
    settings = folder / "group_vars" / "all.yml"
    text = settings.read_text().replace("squall_kind: hpc", "squall_kind: lab-inv")
    settings.write_text(text.replace("squall_scheduler: slurm", "squall_scheduler: none"))
    with pytest.raises(InvalidInput, match=r"squall_kind: 'lab-inv' is not a kind of site this version reads "
                                           r"from an inventory \(cloud, hpc, ssh\)"):
        load_site_inventory("lab", folder)
    registry.register(SiteKind("lab-inv", _open_lab, inventory=InventoryRules(check)))
    try:
        with pytest.raises(InvalidInput, match="squall_partitions: a lab-inv site has no partitions"):
            load_site_inventory("lab", folder)
    finally:
        del registry.KINDS["lab-inv"]

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


def _open_lab(name, home, store, config):
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

"""A Slurm association's limits as ``scontrol show assoc_mgr`` prints them (the sample was taken from the test
bed with limits set on the user and the account, one 1-CPU, 500 MB, 1-GPU job running), and what Squall does
with them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from squall.errors import Refused
from squall.money.site_limits import SiteLimit, check_task_fits, concurrency, task_demand
from squall.sites.executors.slurm_limits import association_chain, parse_associations, site_limits
from squall.spec import Resources

SAMPLE = (Path(__file__).parent / "data" / "assoc_mgr.txt").read_text()


def records(text: str = SAMPLE) -> list[str]:
    return [r.strip() for r in re.split(r"\n(?=ClusterName=)", text) if r.startswith("ClusterName=")]


def test_the_sample_parses_into_the_user_and_its_accounts():
    found = parse_associations(records())
    assert [(a.account, a.user, a.parent, a.default) for a in found] == [
        ("root", "", "", False), ("squall", "", "root", False), ("squall", "squall-svc", "", True)]
    user = found[2]
    assert user.limits == {"cpus": (2, 1, "GrpTRES cpu"), "gpus": (1, 1, "GrpTRES gres/gpu"),
                           "jobs:MaxJobs": (5, 1, "MaxJobs")}
    assert found[1].limits == {"jobs:GrpJobs": (7, 1, "GrpJobs"), "memory_mb": (3000, 500, "GrpTRES mem")}
    assert found[0].limits == {}  # N(…) is no limit


def test_the_tightest_limit_along_the_chain_wins():
    limits = {limit.resource: limit for limit in site_limits(parse_associations(records()), None, "debug")}
    assert set(limits) == {"cpus", "gpus", "jobs", "memory_mb"}
    assert (limits["jobs"].limit, limits["jobs"].available) == (5, 4)  # MaxJobs 5 (1 used) beats GrpJobs 7
    assert limits["memory_mb"].source == "Slurm association account=squall GrpTRES mem"
    assert limits["cpus"].source == "Slurm association user=squall-svc account=squall GrpTRES cpu"
    assert limits["gpus"].available == 0


def test_the_job_account_and_partition_choose_the_association():
    general = SAMPLE.split("ClusterName=")[3]
    physics = ("ClusterName=" + general.replace("Account=squall", "Account=physics")
               .replace("DefAssoc=Yes", "DefAssoc=No").replace("cpu=2(1)", "cpu=64(0)"))
    debug = ("ClusterName=" + general.replace("Partition= ", "Partition=debug ").replace("cpu=2(1)", "cpu=4(0)"))
    found = parse_associations(records() + [physics.strip(), debug.strip()])
    assert association_chain(found, "physics", "debug")[0].limits["cpus"][0] == 64
    assert association_chain(found, None, "debug")[0].partition == "debug"  # the partition's own record first
    assert association_chain(found, None, "long")[0].limits["cpus"][0] == 2
    assert [a.account for a in association_chain(found, None, "long")] == ["squall", "squall", "root"]
    assert association_chain(found, "nowhere", "debug") == []


def test_a_task_above_a_limit_is_refused_naming_it_and_one_within_runs_in_turns():
    limits = [SiteLimit("cpus", 4, 3, "Slurm association account=a GrpTRES cpu"),
              SiteLimit("gpus", 2, 0, "Slurm association account=a GrpTRES gres/gpu")]
    with pytest.raises(Refused, match=r"one task needs 8 cpus, above the limit of 4 \(Slurm association "
                                      r"account=a GrpTRES cpu\)"):
        check_task_fits("hpc", limits, task_demand(Resources(cpus=8)))
    check_task_fits("hpc", limits, task_demand(Resources(cpus=4, gpus=2)))  # fits the limits, waits for them
    assert concurrency(limits, task_demand(Resources(cpus=1))) == 1  # 1 of 4 CPUs free
    assert concurrency([SiteLimit("cpus", 16, 0, "x")], task_demand(Resources(cpus=2))) == 8
    assert concurrency(limits, task_demand(Resources(cpus=5, gpus=0))) == 1  # none free now: one at a time
    assert concurrency([], task_demand(Resources())) is None

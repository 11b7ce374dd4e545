"""An OpenStack project's own limits (Nova's absolute limits) in estimates, admission and ``quota show``.

Nova is a stand-in on 127.0.0.1 (``tests/infra/nova_double.py``) read by the real openstacksdk through a
real ``clouds.yaml``; the organisation is the repository's ``zephy`` (job machines: 2 × c2.xlarge, 8 cpus
and 32 GiB each).
"""

from __future__ import annotations

import pytest

from tests.cli.test_money_cli import cloud_site
from tests.infra.nova_double import NovaDouble


@pytest.fixture
def nova(squall):
    double = NovaDouble({"maxTotalInstances": 10, "totalInstancesUsed": 3, "maxTotalCores": 20,
                         "totalCoresUsed": 12, "maxTotalRAMSize": -1, "totalRAMUsed": 0})
    env = {"OS_CLIENT_CONFIG_FILE": str(double.clouds_yaml(squall.cwd, "zcloud")), "OS_CLOUD": "zcloud"}
    cloud_site(squall, "zc", "zephy")
    yield double, env
    double.close()


def test_a_job_whose_machines_the_project_cannot_take_now_is_refused_before_anything_is_made(squall, make_spec,
                                                                                            nova):
    double, env = nova
    spec = make_spec({"name": "big", "command": "true", "split": 4, "resources": {"walltime": "00:10:00"}})
    proc = squall.run("job", "run", str(spec), "--site", "zc", env=env)
    assert proc.returncode == 4, proc.stderr
    assert ("the job's machines need 16 cpus, 8 available of 20 (OpenStack OS_* environment Nova limit "
            "maxTotalCores)") in proc.stderr
    assert squall.job_count() == 0
    assert squall.query("SELECT name FROM stacks WHERE kind = 'job'") == []
    assert "GET /compute/v2.1/limits" in double.requests

    code, report = squall.json("job", "estimate", str(spec), "--site", "zc", env=env)
    row = report["sites"][0]
    assert code == 0 and row["eligible"] is False and "maxTotalCores" in row["reason"], report


def test_limits_are_shown_and_a_job_that_fits_them_is_estimated(squall, make_spec, nova):
    double, env = nova
    double.absolute["totalCoresUsed"] = 0
    spec = make_spec({"name": "fits", "command": "true", "split": 4, "resources": {"walltime": "00:10:00"}})
    code, report = squall.json("job", "estimate", str(spec), "--site", "zc", env=env)
    row = report["sites"][0]
    assert code == 0 and row["eligible"] is True, report
    shown = {limit["resource"]: limit for limit in row["site_limits"]["limits"]}
    assert shown["cpus"]["available"] == 20 and shown["machines"]["available"] == 7
    assert "memory_mb" not in shown  # -1: unlimited

    assert squall.json("quota", "set", "project:default/default", "cpus", "12")[0] == 0
    double.absolute["totalCoresUsed"] = 15
    code, shown = squall.json("quota", "show", "project:default/default", "--site", "zc", env=env)
    assert code == 0, shown
    rows = {(r["scope"], r["resource"]): r for r in shown["quotas"]}
    assert rows[("site:zc", "cpus")]["limit"] == 20 and rows[("site:zc", "cpus")]["available"] == 5
    assert rows[("project:default/default", "cpus")]["available"] == 5  # the smaller of its own and the site's
    assert shown["site"]["source"] == "OpenStack Nova limits (OS_* environment)"


def test_unreadable_limits_refuse_nothing_and_say_why(squall, make_spec):
    cloud_site(squall, "zc", "zephy")
    spec = make_spec({"name": "blind", "command": "true", "split": 2, "resources": {"walltime": "00:10:00"}})
    code, report = squall.json("job", "estimate", str(spec), "--site", "zc",
                               env={"OS_CLIENT_CONFIG_FILE": "/nonexistent", "OS_CLOUD": "nowhere"})
    row = report["sites"][0]
    assert code == 0 and row["eligible"] is True, report
    assert row["site_limits"]["source"].startswith("OpenStack Nova limits not read: ")

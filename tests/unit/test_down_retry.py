"""``down`` against a site that does not answer for a while (an sshd restarting): asked again within the
job's leases; still unreachable, the job records what it left there and keeps its leases for gc. The site's
``down`` is the test double here: whether it fails is the test's choice, everything else is the real runner
on the local site."""

from __future__ import annotations

import pytest

from squall.errors import SiteUnreachable
from squall.runner import Runner
from squall.sites.assembled import AssembledSite
from squall.spec import load_spec
from squall.store import Store


@pytest.fixture
def flaky_down(monkeypatch):
    """``down`` fails its first ``failures`` calls (SiteUnreachable), then works; the calls are counted."""
    monkeypatch.setattr("squall.runner.DOWN_PAUSES", (0.05, 0.05, 0.05))
    real = AssembledSite.down
    calls: list[int] = []

    def install(failures: int) -> list[int]:
        def down(self, plan):
            calls.append(1)
            if len(calls) <= failures:
                raise SiteUnreachable("down: squall-svc@login:22 unreachable: connection refused")
            return real(self, plan)

        monkeypatch.setattr(AssembledSite, "down", down)
        return calls

    return install


def run(tmp_path, make_spec) -> tuple[Store, str]:
    home = tmp_path / "home"
    store = Store(home)
    runner = Runner(store, home)
    spec = make_spec({"name": "down", "split": 2, "command": 'echo ok > "$SQUALL_OUTPUT_DIR/ok"'})
    plan = runner.submit(load_spec(str(spec)), "local", tmp_path / "results")
    runner.drive(plan.job_id)
    runner.close()
    return store, plan.job_id


def test_down_is_asked_again_while_the_site_does_not_answer(tmp_path, make_spec, flaky_down, monkeypatch):
    monkeypatch.delenv("SQUALL_DATABASE_URL", raising=False)
    calls = flaky_down(2)
    store, job_id = run(tmp_path, make_spec)
    job = store.job(job_id)
    assert (job.status, job.error, len(calls)) == ("succeeded", None, 3)
    assert store.leases(job_id=job_id) == []  # released: nothing is left at the site
    assert not list((tmp_path / "home" / "sites" / "local" / "work").glob("squall-*"))


def test_a_site_that_never_answers_leaves_a_record_of_what_is_still_there(tmp_path, make_spec, flaky_down,
                                                                          monkeypatch):
    monkeypatch.delenv("SQUALL_DATABASE_URL", raising=False)
    calls = flaky_down(99)
    store, job_id = run(tmp_path, make_spec)
    job = store.job(job_id)
    assert len(calls) == 4 and "still at site local" in job.error and "squall gc" in job.error, job.error
    left = [e.detail for e in store.journal(job_id) if (e.phase, e.event) == ("down", "left")]
    assert left and left[0]["resources"] == [lease.resource for lease in store.leases(job_id=job_id)] != []

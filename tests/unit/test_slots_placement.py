"""Where the scheduler-free executor puts tasks: balanced by input bytes, deterministic, each task once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from squall.sites.base import TaskPlan
from squall.sites.slots import SlotsExecutor


def plan_of(sizes: list[int]):
    tasks = tuple(TaskPlan(i, (SimpleNamespace(size=size, path=Path(f"/in/{i}"), rel=f"{i}"),)) for i, size in
                  enumerate(sizes))
    return SimpleNamespace(tasks=tasks, job_id="j")


def hosts(count: int):
    return [SimpleNamespace(name=f"node-{i}") for i in range(1, count + 1)]


def test_inputs_are_balanced_over_the_hosts_by_size():
    executor = SlotsExecutor("s", hosts(3))
    placement = executor.placement(plan_of([900, 100, 100, 100, 500, 400, 300]))
    load: dict[str, int] = {}
    for index, host in placement.items():
        load[host.name] = load.get(host.name, 0) + [900, 100, 100, 100, 500, 400, 300][index]
    assert sorted(placement) == list(range(7))
    assert max(load.values()) == 900  # the largest task alone: no host holds more than the best split allows
    assert min(load.values()) >= 700


def test_placement_is_the_same_for_a_resumed_controller_and_spreads_equal_tasks():
    first = SlotsExecutor("s", hosts(2)).placement(plan_of([0] * 4))
    again = SlotsExecutor("s", hosts(2)).placement(plan_of([0] * 4))
    assert {i: h.name for i, h in first.items()} == {i: h.name for i, h in again.items()}
    assert sorted(h.name for h in first.values()) == ["node-1", "node-1", "node-2", "node-2"]


def test_slots_come_from_the_declared_cpus_or_the_host_itself():
    plan = SimpleNamespace(spec=SimpleNamespace(resources=SimpleNamespace(cpus=2)))
    declared = SimpleNamespace(name="a", declared={"cpus": 7})
    counted = SimpleNamespace(name="b", declared={})
    executor = SlotsExecutor("s", [declared, counted])
    assert executor.task_fields(plan, declared)["slots"]["count"] == 3
    assert executor.task_fields(plan, counted)["slots"] == {"dir": "~/.squall/slots", "cpus": 2}

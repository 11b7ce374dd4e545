"""Where the scheduler-free executor puts tasks: balanced by input bytes, deterministic, each task once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from squall.job_types import TaskPlan
from squall.sites.executors.slots import SlotsExecutor
from squall.spec import Resources


def plan_of(sizes: list[int], nodes: int = 1):
    tasks = tuple(TaskPlan(i, (SimpleNamespace(size=size, path=Path(f"/in/{i}"), rel=f"{i}"),)) for i, size in
                  enumerate(sizes))
    return SimpleNamespace(tasks=tasks, job_id="j", spec=SimpleNamespace(resources=Resources(nodes=nodes)))


class Host:
    """A stand-in host: a name, hashable as RemoteHost is."""

    def __init__(self, name: str):
        self.name = name


def hosts(count: int):
    return [Host(f"node-{i}") for i in range(1, count + 1)]


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
    plan = SimpleNamespace(spec=SimpleNamespace(resources=Resources(cpus=2)))
    declared = SimpleNamespace(name="a", declared={"cpus": 7}, slots_dir="~/.squall/slots")
    counted = SimpleNamespace(name="b", declared={}, slots_dir="~/.squall/slots")
    executor = SlotsExecutor("s", [declared, counted])
    assert executor.task_fields(plan, declared, 0)["slots"]["count"] == 3
    assert executor.task_fields(plan, counted, 0) == {"slots": {"dir": "~/.squall/slots", "cpus": 2}}


def test_a_task_of_two_nodes_gets_two_distinct_hosts_and_each_holds_its_folder():
    executor = SlotsExecutor("s", hosts(3))
    plan = plan_of([300, 200, 100], nodes=2)
    spans = executor.task_hosts(plan)
    assert all(len({h.name for h in hosts_}) == 2 for hosts_ in spans.values())
    assert {i: h.name for i, h in executor.placement(plan).items()} == {i: hs[0].name for i, hs in spans.items()}
    holders = {h.name: sorted(ix) for h, ix in executor.holders(plan).items()}
    assert sum(len(ix) for ix in holders.values()) == 6  # every task on two hosts
    assert max(len(ix) for ix in holders.values()) == 2  # spread: no host holds all three
    runners = executor.by_host(plan)
    assert sum(len(ix) for ix in runners.values()) == 3  # started (and collected) once, on its first host

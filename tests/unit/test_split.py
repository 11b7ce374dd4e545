from __future__ import annotations

from pathlib import Path

from hypothesis import given, strategies as st

from squall.spec import InputFile
from squall.split import split_inputs


def files(sizes: list[int]) -> list[InputFile]:
    return [InputFile(f"f{i:03d}", Path(f"/x/f{i:03d}"), size) for i, size in enumerate(sizes)]


def test_balanced_by_size_and_order_kept():
    buckets = split_inputs(files([100, 90, 10, 10, 10, 60, 50, 40]), 2)
    loads = [sum(i.size for i in b) for b in buckets]
    assert loads == [190, 180] or sorted(loads) == [180, 190]
    for bucket in buckets:
        assert [i.rel for i in bucket] == sorted(i.rel for i in bucket)


def test_more_tasks_than_inputs_leaves_empty_tasks():
    buckets = split_inputs(files([5, 5]), 4)
    assert [len(b) for b in buckets] == [1, 1, 0, 0]


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=60), st.integers(min_value=1, max_value=9))
def test_every_input_lands_once_and_the_split_is_near_even(sizes, tasks):
    items = files(sizes)
    buckets = split_inputs(items, tasks)
    assert len(buckets) == tasks
    assert sorted(i.rel for b in buckets for i in b) == sorted(i.rel for i in items)
    loads = [sum(i.size for i in b) for b in buckets]
    # LPT guarantee: the spread never exceeds the largest single item.
    assert max(loads) - min(loads) <= max(sizes, default=0)
    assert split_inputs(items, tasks) == buckets  # deterministic

"""Divide a job's inputs into N sub-lists of nearly equal total size."""

from __future__ import annotations

import heapq
from typing import Sequence, TypeVar

from squall.spec import InputFile

T = TypeVar("T", bound=InputFile)


def split_inputs(inputs: Sequence[T], tasks: int) -> list[list[T]]:
    """Largest-first onto the lightest task (LPT); each sub-list keeps spec order.

    Ties go to the lowest task index, so the split is deterministic: the same
    spec always gives the same tasks, which resuming a job relies on.
    """
    if tasks < 1:
        raise ValueError("tasks must be >= 1")
    order = {item.rel: position for position, item in enumerate(inputs)}
    heap = [(0, index) for index in range(tasks)]
    buckets: list[list[T]] = [[] for _ in range(tasks)]
    for item in sorted(inputs, key=lambda i: (-i.size, order[i.rel])):
        load, index = heapq.heappop(heap)
        buckets[index].append(item)
        heapq.heappush(heap, (load + item.size, index))
    return [sorted(bucket, key=lambda i: order[i.rel]) for bucket in buckets]

"""What the cloud listings give gc: each resource tagged ``managed-by: squall`` at one cloud site, and how to
remove one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TaggedResource:
    kind: str  # e.g. ec2:instance
    id: str
    tags: dict[str, str]


class TaggedInventory(Protocol):
    """Lists what carries ``managed-by: squall`` at one cloud site, and removes one of them."""

    name: str
    removal_order: tuple[str, ...]  # the kinds it can remove, in the order they must go

    def tagged(self) -> list[TaggedResource]:
        ...

    def remove(self, resource: TaggedResource) -> None:
        ...


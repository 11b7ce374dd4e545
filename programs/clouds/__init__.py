"""Cloud-specific resources behind the components: one module per cloud.

Every machine-like resource and every firewall rule carries a ``squall:role``
(head, compute, pool, bank, job, public): the security rules in
``squall.programs.rules`` decide by role what may face the internet.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from squall.programs.components import Placement


@dataclass(frozen=True)
class BuiltCluster:
    placement: Placement
    head_address: pulumi.Output[str]
    public_address: pulumi.Input[str] | None


def with_role(tags: dict[str, str], role: str) -> dict[str, str]:
    return {**tags, "squall:role": role}


def described(role: str, text: str) -> str:
    """A firewall rule's description; untaggable rules (OpenStack) carry their role here."""
    return f"[{role}] {text}"

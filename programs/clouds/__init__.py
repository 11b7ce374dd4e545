"""Cloud-specific resources behind the components: one module per cloud.

Every machine-like resource and every firewall rule carries a ``squall:role``
(head, compute, pool, bank, job, public): the security rules in
``squall.programs.rules`` decide by role what may face the internet.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from squall.programs.cloud_init import UserData, render_user_data
from squall.programs.components import Placement
from squall.programs.design import OrgSpec


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


def machine_user_data(role: str, name: str, spec: OrgSpec, controller_key: str,
                      nfs_export_to: str | None = None) -> str:
    """User-data of a head, pool or bank machine: the job account, the organisation's boot script, and on
    the head its operator account (the named one, else the cloud's default user)."""
    operator = spec.operator
    named = operator if operator and role == "head" else None
    return render_user_data(UserData(role, name, controller_key, boot_script=spec.boot_script,
                                     nfs_export_to=nfs_export_to, operator=named.user if named else None,
                                     operator_public_key=named.public_key if named else None))

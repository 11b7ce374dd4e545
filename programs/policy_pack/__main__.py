"""``pulumi preview --policy-pack programs/policy_pack``: Squall's security rules, enforced."""

from pulumi_policy import PolicyPack

from squall.programs.policy import policies

PolicyPack(name="squall-security", policies=policies())

"""The security rules as a pulumi-policy (CrossGuard) pack for real ``preview``/``up`` runs.

The same functions the offline tests run over graphs captured by mocks; only
``programs/policy_pack/__main__.py`` builds the ``PolicyPack`` (constructing one
starts a gRPC server, so tests never do). Needs ``pip install 'squall[policy]'``.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy, ReportViolation, StackValidationArgs, StackValidationPolicy
from pulumi_policy.deserialize import deserialize_properties

from squall.programs.rules import RULES, Resource, Rule


def graph_of(args: StackValidationArgs) -> list[Resource]:
    """The stack's resources as the rules see them (secrets unwrapped, so user-data can be scanned)."""
    return [Resource(r.resource_type, r.name, deserialize_properties(dict(r.props)), r.urn)
            for r in args.resources]


def _validation(rule: Rule):
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for violation in rule.check(graph_of(args)):
            report_violation(f"{violation.resource}: {violation.message}", None)
    return validate


def policies(level: EnforcementLevel = EnforcementLevel.MANDATORY) -> list[Policy]:
    return [StackValidationPolicy(name=f"squall-{rule.name}", description=rule.description,
                                  validate=_validation(rule), enforcement_level=level)
            for rule in RULES]

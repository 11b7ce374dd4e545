"""``squall org validate``: an organisation's stack file checked offline, as a CI gate.

No Pulumi CLI and no cloud call: the design step validates the file, then the
organisation program and a job stack of the largest size the organisation
allows run under Pulumi's mocks with the real provider SDK classes
(``squall.programs.offline``), and every rule in ``squall.programs.rules`` —
the security rules and the providers' documented limits — runs over what they
declare. What a real provider computes (addresses, image lookups) is a
placeholder; what only the provider can refuse (quotas, a flavour that does
not exist in a region) still needs a real ``org preview``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from squall.errors import InvalidInput
from squall.infra.driver import StackName, require_sdks
from squall.infra.orgs import cluster_of
from squall.programs.rules import USER_DATA_LIMITS, Violation, check, user_data_of, user_data_size
from squall.programs.settings import JobSettings, JobStackConfig, OrgStackConfig
from squall.programs.stack_files import load_stack, stack_file

PLACEHOLDER_SECRET = "offline-validation-placeholder"  # a secret's value is never read for validation


@dataclass
class ValidationReport:
    stack: str
    cloud: str
    resources: dict[str, dict[str, int]] = field(default_factory=dict)  # "org"/"job" -> type -> count
    violations: list[tuple[str, Violation]] = field(default_factory=list)  # (which stack, violation)
    user_data: list[dict] = field(default_factory=list)  # resource, stack, bytes, limit
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        return {"stack": self.stack, "cloud": self.cloud, "clean": self.clean, "resources": self.resources,
                "violations": [{"stack": where, "rule": v.rule, "resource": v.resource, "message": v.message}
                               for where, v in self.violations],
                "user_data": self.user_data, "seconds": round(self.seconds, 2)}


def validate_org(stack: StackName, directory: Path | None = None) -> ValidationReport:
    """Raise ``InvalidInput`` (exit 2) for a stack file that is not valid; else the report."""
    started = time.perf_counter()
    settings = load_stack(str(stack), directory)
    if not isinstance(settings, OrgStackConfig):
        raise InvalidInput(f"{stack_file(str(stack), directory)}: squall:kind is not org")
    cluster_of(settings)  # the stack's sizes and slots fit the spec (named errors, exit 2)
    require_sdks(settings.org.cloud)
    from squall.programs.offline import evaluate
    from squall.programs.stacks import job_program, org_program

    config = _provider_values(stack, directory)
    report = ValidationReport(str(stack), settings.org.cloud)
    org = evaluate(lambda: org_program(settings), config, stack=str(stack))
    graphs = {"org": org.resources}
    if settings.org.job_stack is not None:
        from squall.infra.job_stacks import placement_from

        job_settings = JobStackConfig(
            org=settings.org, controller_public_key=settings.controller_public_key,
            job=JobSettings(id="validate", created_at=int(time.time()), nodes=settings.org.job_stack.nodes),
            placement=placement_from(settings, org.outputs))
        job_stack = StackName(stack.org, "job", "validate")
        graphs["job"] = evaluate(lambda: job_program(job_settings), config, stack=str(job_stack)).resources
    for where, resources in graphs.items():
        report.resources[where] = dict(sorted(Counter(r.type for r in resources).items()))
        report.violations += [(where, v) for v in check(resources)]
        for resource in resources:
            text = user_data_of(resource)
            cloud = resource.type.split(":", 1)[0]
            if text is not None and cloud in USER_DATA_LIMITS:
                size, limit = user_data_size(text, cloud)
                report.user_data.append({"stack": where, "resource": resource.name, "bytes": size, "limit": limit})
    report.seconds = time.perf_counter() - started
    return report


def _provider_values(stack: StackName, directory: Path | None) -> dict[str, object]:
    """The stack file's config as Pulumi passes it; a secret's value (from the environment) is not needed."""
    config = (yaml.safe_load(stack_file(str(stack), directory).read_text()) or {}).get("config") or {}
    return {key: PLACEHOLDER_SECRET if isinstance(value, dict) and set(value) == {"secret_env"} else value
            for key, value in config.items()}

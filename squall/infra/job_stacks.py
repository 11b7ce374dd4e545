"""A cloud job's ephemeral stack ``<org>.job.<job-id>``: created before staging, destroyed in every case.

The job program is the one ``Pulumi.yaml`` runs for ``squall:kind: job``; it is
placed with the organisation stack's outputs (network, subnets, the head
node's address as the only SSH source) and tagged with its expiry, which the
store also records so ``squall gc`` can destroy it if the controller dies.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from squall.errors import Refused
from squall.infra import records
from squall.infra.driver import Engine, StackName, require_sdks
from squall.infra.orgs import Orgs, provider_config
from squall.programs.design import design, design_job_stack
from squall.programs.settings import JobSettings, JobStackConfig, OrgStackConfig, PlacementSettings
from squall.store import Store


def placement_from(org: OrgStackConfig, outputs: dict[str, Any]) -> PlacementSettings:
    """Where the job goes, from the organisation stack's outputs (on Kubernetes: its namespace exists)."""
    if org.org.cloud == "kubernetes":
        if not outputs.get("namespace"):
            raise Refused(f"organisation {org.org.org}: its namespace is not there; is its stack up?",
                          hint=f"squall org up {org.org.org}")
        return PlacementSettings()
    head = outputs.get("head_address")
    if not head:
        raise Refused(f"organisation {org.org.org}: its stack has no head node address; is it up?",
                      hint=f"squall org up {org.org.org}")
    network = outputs.get("network_id")
    return PlacementSettings(
        vpc_id=network if org.org.cloud == "aws" else None,
        network_id=network if org.org.cloud == "openstack" else None,
        subnet_ids=list(outputs.get("subnet_ids") or []), intra_cidr=str(outputs.get("intra_cidr") or ""),
        ssh_from=[f"{head}/32"])


def job_program(settings: JobStackConfig):
    def program() -> None:
        from squall.programs.stacks import job_program as run

        run(settings)
    return program


class JobStacks:
    def __init__(self, store: Store, engine: Engine, stacks_dir: Path | None = None):
        self.store, self.engine, self.stacks_dir = store, engine, stacks_dir

    def name(self, org_stack: StackName, job_id: str) -> StackName:
        return StackName(org_stack.org, "job", job_id)

    def create(self, org_stack: StackName, job_id: str, tasks: int,
               work: dict[str, Any] | None = None) -> dict[str, Any]:
        """Up the job's stack (as many nodes as tasks, at most the organisation's job_stack.nodes).

        ``work`` holds one task's cpus, memory_gib and gpus (they pick the machine), and on Kubernetes what
        the pods run (image, command)."""
        org = Orgs(self.store, self.engine, self.stacks_dir).settings(org_stack)
        require_sdks(org.org.cloud)
        if org.org.job_stack is None:
            raise Refused(f"organisation {org.org.org} has no job_stack section: no cloud jobs there")
        record = records.stack(self.store, str(org_stack))
        outputs = record.outputs if record and record.state == "up" else (self.engine.outputs(org_stack) or {})
        now = time.time()
        nodes = max(1, min(tasks, org.org.job_stack.nodes))
        settings = JobStackConfig(org=org.org, controller_public_key=org.controller_public_key,
                                  job=JobSettings(id=job_id, created_at=int(now), nodes=nodes, tasks=tasks,
                                                  store=self.store.store_id, **(work or {})),
                                  placement=placement_from(org, outputs))
        expires = design_job_stack(design(org.org), job_id, now=int(now), nodes=nodes).expires_at
        stack = self.name(org_stack, job_id)
        records.save_stack(self.store, str(stack), stack.org, "job", "creating", job_id=job_id, expires_at=expires)
        self.store.record(job_id, "stack", "up", stack=str(stack), nodes=nodes)
        try:
            created = self.engine.up(stack, job_program(settings), provider_config(org_stack, self.stacks_dir),
                                     lambda _message: None)
        except BaseException as exc:
            records.save_stack(self.store, str(stack), stack.org, "job", "failed")
            self.store.record(job_id, "stack", "up-failed", stack=str(stack), error=str(exc)[:500])
            raise
        records.save_stack(self.store, str(stack), stack.org, "job", "up", outputs=created)
        self.store.record(job_id, "stack", "up-done", stack=str(stack))
        return created

    def destroy(self, stack: StackName, job_id: str | None) -> None:
        self.store.record(job_id, "stack", "down", stack=str(stack))
        self.engine.destroy(stack, lambda _message: None)
        records.save_stack(self.store, str(stack), stack.org, "job", "destroyed", outputs={})
        self.store.record(job_id, "stack", "down-done", stack=str(stack))

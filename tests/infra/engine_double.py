"""The one test double at the stack driver's boundary: it stands in for Pulumi's engine.

``up`` and ``preview`` run the real program function under Pulumi's mocks (the
real provider SDK classes, see tests/programs/capture.py) and keep the exported
outputs as the stack's; ``destroy`` forgets the stack. Every call is recorded in
order, and any operation can be made to fail, to test what the orchestration
does then. Nothing in squall/ imports this.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from squall.errors import MissingDependency
from squall.infra.driver import OnEvent, Program, StackConfig, StackName
from tests.programs.capture import Graph, evaluate

LOCAL = {"openstack:compute/instance:Instance": {"accessIpV4": "127.0.0.1"},
         "aws:ec2/instance:Instance": {"privateIp": "127.0.0.1", "publicIp": "127.0.0.1"}}


class RecordingEngine:
    missing: str | None = None  # set to play an engine that cannot run here (no Pulumi CLI)

    def check(self) -> None:
        if self.missing:
            raise MissingDependency(self.missing)

    def __init__(self, computed: dict[str, dict] | None = None, up_seconds: float = 0.0):
        self.calls: list[tuple[str, str]] = []
        self.deployed: dict[str, dict[str, Any]] = {}
        self.graphs: dict[str, Graph] = {}  # what each live stack holds
        self.applied: dict[str, Graph] = {}  # the last graph applied to each stack, kept after destroy
        self.fail: dict[str, BaseException] = {}  # operation -> what it raises (once)
        self.computed = computed if computed is not None else LOCAL
        self.up_seconds = up_seconds  # a cloud's provisioning time, for benchmarks
        self._lock = threading.Lock()  # Pulumi's mocks are process-wide: one evaluation at a time
        # Real machines standing in for a job stack's nodes (the multi-host test bed): node i of the program
        # gets job_node_addresses[i]; job_outputs overrides other outputs (the account, the work root).
        self.job_node_addresses: list[str] = []
        self.job_outputs: dict[str, Any] = {}

    def _maybe_fail(self, operation: str, stack: StackName) -> None:
        self.calls.append((operation, str(stack)))
        error = self.fail.pop(operation, None)
        if error is not None:
            raise error

    def _evaluate(self, stack: StackName, program: Program, config: StackConfig, on_event: OnEvent) -> Graph:
        with self._lock:
            graph = evaluate(program, dict(config.values), stack=str(stack), computed=self.computed)
        for resource in graph.resources:
            on_event(f"create {resource.type} {resource.name}")
        return graph

    def preview(self, stack: StackName, program: Program, config: StackConfig, on_event: OnEvent) -> dict[str, int]:
        self._maybe_fail("preview", stack)
        graph = self._evaluate(stack, program, config, on_event)
        return {"create": len(graph.resources)}

    def up(self, stack: StackName, program: Program, config: StackConfig, on_event: OnEvent) -> dict[str, Any]:
        self._maybe_fail("up", stack)
        graph = self._evaluate(stack, program, config, on_event)
        time.sleep(self.up_seconds)
        self.graphs[str(stack)] = self.applied[str(stack)] = graph
        outputs = dict(graph.outputs)
        if stack.kind == "job" and self.job_node_addresses:
            outputs["nodes"] = self.job_node_addresses[:len(outputs.get("nodes") or [])]
            outputs.update(self.job_outputs)
        self.deployed[str(stack)] = outputs
        return outputs

    def destroy(self, stack: StackName, on_event: OnEvent) -> None:
        self._maybe_fail("destroy", stack)
        self.deployed.pop(str(stack), None)
        self.graphs.pop(str(stack), None)

    def outputs(self, stack: StackName) -> dict[str, Any] | None:
        return self.deployed.get(str(stack))

    def stacks(self) -> list[str]:
        return sorted(self.deployed)

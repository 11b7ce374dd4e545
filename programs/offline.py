"""Run a Squall program to completion under Pulumi's own mocks and capture the resources it declares.

No Pulumi CLI, no provider plugin, no network: the real provider SDK classes
register their inputs with a recording mock monitor. ``squall org validate``
checks an organisation offline this way, and the tests capture graphs with it.
What a real provider would compute (addresses, an image's root device) is a
placeholder here, so a graph says what the program *declares*, not what a
cloud would accept: the provider limits are rules (``squall.programs.rules``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import pulumi
from pulumi.runtime import mocks

from squall.programs.rules import Resource

# Outputs a real provider computes and the programs read back.
COMPUTED = {
    "aws:ec2/instance:Instance": {"privateIp": "10.20.0.10", "publicIp": "198.51.100.7"},
    "openstack:compute/instance:Instance": {"accessIpV4": "192.168.10.10"},
    "openstack:networking/floatingIp:FloatingIp": {"address": "203.0.113.7"},
}
# What a data-source lookup answers besides its id (an AMI's own root device name is not always /dev/xvda).
LOOKUPS = {"aws:ec2/getAmi:getAmi": {"rootDeviceName": "/dev/sda1"}}


class Recorder(pulumi.runtime.Mocks):
    def __init__(self, computed: dict[str, dict] | None = None) -> None:
        self.registered: list[tuple[str, str, dict, bool]] = []
        self.calls: list[tuple[str, dict]] = []  # data-source lookups (token, arguments)
        self.providers: dict[str, str] = {}  # resource name -> the explicit provider it was given
        self.computed = {**COMPUTED, **(computed or {})}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.registered.append((args.typ, args.name, dict(args.inputs), bool(args.custom)))
        if args.provider:
            self.providers[args.name] = args.provider
        return f"{args.name}-id", {**args.inputs, **self.computed.get(args.typ, {})}

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        found = {"id": f"looked-up-{args.args.get('name') or args.token.rsplit(':', 1)[-1]}"}
        return {**found, **LOOKUPS.get(args.token, {})}, []


class ParentMonitor(mocks.MockMonitor):
    """Also remembers each resource's URN and its parent's, to check ``parent=self``."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self.parents: dict[tuple[str, str], str] = {}
        self.urns: dict[tuple[str, str], str] = {}
        self.dependencies: dict[tuple[str, str], list[str]] = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        self.parents[(request.type, request.name)] = request.parent
        self.dependencies[(request.type, request.name)] = list(request.dependencies)
        self.urns[(request.type, request.name)] = response.urn
        return response

@dataclass
class Graph:
    resources: list[Resource]  # custom resources, in registration order
    components: list[Resource]
    parents: dict[str, str] = field(default_factory=dict)  # urn -> parent urn
    outputs: dict = field(default_factory=dict)  # the stack's exports
    dependencies: dict[str, list[str]] = field(default_factory=dict)  # urn -> urns it waits for (depends_on)
    lookups: list[tuple[str, dict]] = field(default_factory=list)  # data-source calls (token, arguments)
    providers: dict[str, str] = field(default_factory=dict)  # resource name -> explicit provider reference

    def depends_on(self, resource: Resource, other: Resource) -> bool:
        return other.urn in self.dependencies.get(resource.urn, [])

    def of_type(self, token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == token]

    def count(self, token: str) -> int:
        return len(self.of_type(token))


def evaluate(program: Callable[[], None], config: dict[str, object] | None = None, stack: str = "test",
             computed: dict[str, dict] | None = None) -> Graph:
    """Run ``program`` to completion under mocks, with ``squall:``/provider config, and return its graph.

    ``computed`` adds outputs a provider would compute, by resource type (addresses …)."""
    recorder = Recorder(computed)
    monitor = ParentMonitor(recorder)
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]  # a fresh root Stack per run
    pulumi.runtime.set_mocks(recorder, project="squall", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({key: value if isinstance(value, str) else json.dumps(value)
                                   for key, value in (config or {}).items()})
    exported: dict = {}

    def program_and_exports() -> pulumi.Output:
        program()
        root = pulumi.runtime.settings.get_root_resource()
        return pulumi.Output.from_input(getattr(root, "outputs", {})).apply(exported.update)

    pulumi.runtime.test(program_and_exports)()
    resources, components = [], []
    for typ, name, inputs, custom in recorder.registered:
        resource = Resource(typ, name, inputs, monitor.urns.get((typ, name), ""))
        (resources if custom else components).append(resource)
    parents = {monitor.urns[key]: parent for key, parent in monitor.parents.items() if key in monitor.urns}
    dependencies = {monitor.urns[key]: deps for key, deps in monitor.dependencies.items() if key in monitor.urns}
    return Graph(resources, components, parents, exported, dependencies, recorder.calls, recorder.providers)

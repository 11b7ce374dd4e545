"""The ``kubernetes`` kind: each job an Indexed Job in the organisation's namespace (``kubernetes_site``).

No inventory describes it: ``site add NAME --kubernetes ORG_STACK`` records it, and gc lists what its jobs'
stacks tagged in its cluster.
"""

from __future__ import annotations

from pathlib import Path

from squall.sites.registry import Adder, AddOption, SiteKind, register


def open_kubernetes(name: str, home: Path, store, config: dict, inventory):
    from squall.sites.kinds.kubernetes_site import open_kubernetes_site

    return open_kubernetes_site(name, home, store, config)


def add(store, name: str, values: dict) -> dict:
    from squall.sites.kinds.kubernetes_site import add_kubernetes_site

    return add_kubernetes_site(store, name, values["org_stack"], values.get("context"),
                               values.get("network_policy_cni"))


def cloud_listing(name: str, config: dict):
    from squall.gc.clouds.kubernetes import KubernetesTaggedInventory

    return KubernetesTaggedInventory(name, config.get("context"))


register(SiteKind("kubernetes", open_kubernetes, cloud_listing=cloud_listing, adder=Adder(
    AddOption("--kubernetes", "org_stack", "Kubernetes site: the organisation stack (<org>.org.<name>) whose "
              "namespace jobs run in.", "ORG_STACK"),
    add, lambda name, summary: f"added kubernetes site {name} (namespace of {summary['org_stack']})",
    options=(
        AddOption("--context", "context", "Kubernetes site: kubeconfig context (default: the stack file's, else "
                  "the current)."),
        AddOption("--network-policy-cni", "network_policy_cni", "Kubernetes site: the CNI that enforces "
                  "NetworkPolicies there (calico, cilium...); without it, jobs are not reported network-isolated.",
                  "CNI"),
    ))))

"""What carries ``app.kubernetes.io/managed-by: squall`` in one Kubernetes cluster (a kubernetes site).

Used by ``squall gc`` to find objects no stack owns; ``--force`` deletes them.
Lists the kinds Squall's programs create, through the official client's
dynamic API.
"""

from __future__ import annotations

from squall.errors import MissingDependency, Refused, SiteUnreachable
from squall.gc.clouds.tagged import TaggedResource
from squall.programs.rules import Resource, owner_tags

SELECTOR = "app.kubernetes.io/managed-by=squall"
KINDS = (  # (apiVersion, kind), as the programs create them
    ("batch/v1", "Job"), ("networking.k8s.io/v1", "NetworkPolicy"), ("v1", "ConfigMap"), ("apps/v1", "DaemonSet"),
    ("v1", "ResourceQuota"), ("v1", "LimitRange"), ("v1", "Namespace"), ("scheduling.k8s.io/v1", "PriorityClass"),
)


class KubernetesTaggedInventory:
    # Namespaced objects before the namespace (deleting it first would leave them terminating with it).
    removal_order = tuple(f"k8s:{api_version}:{kind}" for api_version, kind in KINDS)

    def __init__(self, name: str, context: str | None = None, client=None):
        self.name, self.context, self._client = f"kubernetes:{name}", context, client

    def _dynamic(self):
        if self._client is None:
            try:
                from kubernetes import config, dynamic
                from kubernetes.client import api_client
            except ImportError:
                raise MissingDependency("listing Kubernetes objects needs the kubernetes client",
                                        hint="pip install 'squall[kubernetes]'") from None
            try:
                self._client = dynamic.DynamicClient(api_client.ApiClient(
                    configuration=config.new_client_from_config(context=self.context).configuration))
            except Exception as exc:  # noqa: BLE001 - any kubeconfig problem means: cannot reach it
                raise SiteUnreachable(f"{self.name}: no usable kubeconfig context {self.context!r}: {exc}") from None
        return self._client

    def tagged(self) -> list[TaggedResource]:
        found = []
        client = self._dynamic()
        for api_version, kind in KINDS:
            try:
                items = client.resources.get(api_version=api_version, kind=kind).get(label_selector=SELECTOR).items
            except Exception as exc:  # noqa: BLE001 - the client raises many types for one unreachable API
                raise SiteUnreachable(f"{self.name}: cannot list {kind}: {exc}") from None
            for item in items:
                meta = item.metadata
                where = f"{meta.namespace}/{meta.name}" if getattr(meta, "namespace", None) else meta.name
                labels = dict(meta.labels or {})
                tags = owner_tags(Resource(f"kubernetes:{api_version}:{kind}", meta.name,
                                           {"metadata": {"labels": labels}})) or {}
                found.append(TaggedResource(f"k8s:{api_version}:{kind}", where, tags))
        return found

    def remove(self, resource: TaggedResource) -> None:
        _, api_version, kind = resource.kind.split(":", 2)
        namespace, _, name = resource.id.rpartition("/")
        try:
            api = self._dynamic().resources.get(api_version=api_version, kind=kind)
            api.delete(name=name, namespace=namespace or None)
        except SiteUnreachable:
            raise
        except Exception as exc:  # noqa: BLE001 - the client raises many types; the operator gets the id and why
            raise Refused(f"{kind} {resource.id}: remove by hand ({exc})") from None

"""What carries ``managed-by=squall`` in one OpenStack cloud: servers and volumes (metadata), networks,
routers and security groups (tags). Used by ``squall gc``; ``--force`` deletes servers and volumes, the
rest is reported for hand removal (they are shared by what is left). Needs openstacksdk
(``pip install 'squall[openstack]'``) and a ``clouds.yaml`` entry or ``OS_*`` variables.
"""

from __future__ import annotations

from squall.errors import MissingDependency, Refused, SiteUnreachable
from squall.gc.clouds.tagged import TaggedResource

OWNED = "managed-by=squall"


def _tags(strings: list[str] | None) -> dict[str, str]:
    return dict(s.partition("=")[::2] for s in strings or [])


class OpenStackTaggedInventory:
    removal_order = ("server", "volume", "security-group", "network")  # a router keeps its interfaces: by hand

    def __init__(self, cloud: str | None, connection=None):
        self.name = f"openstack:{cloud or 'OS_* environment'}"
        self.cloud, self._connection = cloud, connection

    def _conn(self):
        if self._connection is None:
            try:
                import openstack
            except ImportError:
                raise MissingDependency("listing OpenStack resources needs openstacksdk",
                                        hint="pip install 'squall[openstack]'") from None
            try:
                self._connection = openstack.connect(cloud=self.cloud) if self.cloud else openstack.connect()
            except Exception as exc:  # noqa: BLE001 - bad clouds.yaml, no auth: either way unreachable
                raise SiteUnreachable(f"{self.name}: cannot connect: {exc}") from None
        return self._connection

    def tagged(self) -> list[TaggedResource]:
        conn = self._conn()
        try:
            found = [TaggedResource("server", s.id, dict(s.metadata or {})) for s in conn.compute.servers(details=True)
                     if (s.metadata or {}).get("managed-by") == "squall"]
            found += [TaggedResource("volume", v.id, dict(v.metadata or {}))
                      for v in conn.block_storage.volumes(details=True)
                      if (v.metadata or {}).get("managed-by") == "squall"]
            for kind, listing in (("network", conn.network.networks), ("router", conn.network.routers),
                                  ("security-group", conn.network.security_groups)):
                found += [TaggedResource(kind, r.id, _tags(r.tags)) for r in listing(tags=OWNED)]
        except Exception as exc:  # noqa: BLE001 - the SDK raises many types for one unreachable cloud
            raise SiteUnreachable(f"{self.name}: cannot list tagged resources: {exc}") from None
        return found

    def remove(self, resource: TaggedResource) -> None:
        if resource.kind not in self.removal_order:
            raise Refused(f"{resource.kind} {resource.id}: remove by hand (gc removes "
                          f"{', '.join(self.removal_order)})")
        conn = self._conn()
        try:
            if resource.kind == "server":
                server = conn.compute.get_server(resource.id)
                conn.compute.delete_server(server)
                conn.compute.wait_for_delete(server)  # its volume and ports can go next
            elif resource.kind == "volume":
                conn.block_storage.delete_volume(resource.id)
            elif resource.kind == "security-group":
                conn.network.delete_security_group(resource.id)
            else:
                conn.network.delete_network(resource.id)
        except Exception as exc:  # noqa: BLE001 - the SDK raises many types; the operator gets the id and why
            raise Refused(f"{resource.kind} {resource.id}: remove by hand ({exc})") from None

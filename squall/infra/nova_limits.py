"""An OpenStack project's own compute limits (Nova's absolute limits: instances, cores, RAM), read with
openstacksdk through the same ``clouds.yaml`` entry (``openstack:cloud``) or ``OS_*`` variables as the
organisation's stacks.

A job stack creates all its machines at once, so its machines, cores and RAM must fit in what the project
has left *now*; otherwise Nova refuses a server halfway through ``up``. Limits of -1 are unlimited and left
out.
"""

from __future__ import annotations

from squall.errors import MissingDependency, SiteUnreachable
from squall.money.site_limits import SiteLimit

# Nova's absolute limit -> (Squall's resource name, openstacksdk attribute of the limit, of its use)
NOVA_LIMITS = (
    ("maxTotalInstances", "machines", "instances", "instances_used"),
    ("maxTotalCores", "cpus", "total_cores", "total_cores_used"),
    ("maxTotalRAMSize", "memory_mb", "total_ram", "total_ram_used"),
)


def nova_limits(cloud: str | None, connection=None) -> list[SiteLimit]:
    """The project's limits with their use now. ``connection``: an openstacksdk ``Connection`` already made."""
    where = f"OpenStack {cloud or 'OS_* environment'}"
    if connection is None:
        try:
            import openstack
        except ImportError:
            raise MissingDependency("reading OpenStack limits needs openstacksdk",
                                    hint="pip install 'squall[openstack]'") from None
        try:
            connection = openstack.connect(cloud=cloud) if cloud else openstack.connect()
        except Exception as exc:  # noqa: BLE001 - bad clouds.yaml, no auth: either way unreachable
            raise SiteUnreachable(f"{where}: cannot connect: {exc}") from None
    try:
        absolute = connection.compute.get_limits().absolute
    except Exception as exc:  # noqa: BLE001 - the SDK raises many types for one unreachable cloud
        raise SiteUnreachable(f"{where}: cannot read the compute limits: {exc}") from None
    limits = []
    for nova_name, resource, limit_attr, used_attr in NOVA_LIMITS:
        limit = getattr(absolute, limit_attr, None)
        if limit is None or int(limit) < 0:
            continue
        limits.append(SiteLimit(resource, int(limit), int(getattr(absolute, used_attr, 0) or 0),
                                f"{where} Nova limit {nova_name}"))
    return limits

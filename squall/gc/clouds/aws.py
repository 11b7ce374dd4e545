"""What carries ``managed-by: squall`` in one AWS region: the Resource Groups Tagging API, and the kinds it
does not list (Auto Scaling groups, launch templates, elastic IPs, key pairs) asked for directly.

Used by ``squall gc`` to find resources no stack owns and, with ``--force``,
remove them in dependency order (``REMOVAL_ORDER``: the groups that would
relaunch instances first, the VPC last); a kind not listed there is reported
to be removed by hand. A resource already gone (a root volume deleted with
its instance) counts as removed. Needs
``boto3`` (``pip install 'squall[aws]'``) and AWS credentials in the usual
places (``AWS_ENDPOINT_URL`` points it elsewhere, as the tests do with moto).
"""

from __future__ import annotations

from squall.errors import MissingDependency, Refused, SiteUnreachable
from squall.gc.clouds.tagged import TaggedResource

# What may be removed, in the order AWS lets it go: a volume or group still used by an instance, a subnet
# with interfaces, a VPC with anything in it are refused until what uses them is gone.
REMOVAL_ORDER = ("autoscaling:autoScalingGroup", "ec2:instance", "ec2:natgateway", "ec2:launch-template",
                 "ec2:volume", "ec2:network-interface", "ec2:elastic-ip", "ec2:key-pair", "ec2:security-group",
                 "ec2:subnet", "ec2:route-table", "ec2:internet-gateway", "ec2:vpc")
SQUALL_FILTER = [{"Name": "tag:managed-by", "Values": ["squall"]}]


class AwsTaggedInventory:
    removal_order = REMOVAL_ORDER

    def __init__(self, region: str, client=None, direct: dict | None = None):
        """``client``: the tagging API's, ``direct``: the ``ec2`` and ``autoscaling`` clients (default: made here)."""
        self.region = region
        self.name = f"aws:{region}"
        self._client = client
        self._direct = direct or {}

    def _direct_client(self, service: str):
        if service not in self._direct:
            import boto3

            self._direct[service] = boto3.client(service, region_name=self.region)
        return self._direct[service]

    def _tagging(self):
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise MissingDependency("listing AWS resources needs boto3",
                                        hint="pip install 'squall[aws]'") from None
            self._client = boto3.client("resourcegroupstaggingapi", region_name=self.region)
        return self._client

    def tagged(self) -> list[TaggedResource]:
        from botocore.exceptions import BotoCoreError, ClientError

        found = []
        try:
            pages = self._tagging().get_paginator("get_resources").paginate(
                TagFilters=[{"Key": "managed-by", "Values": ["squall"]}])
            for page in pages:
                for item in page["ResourceTagMappingList"]:
                    arn = item["ResourceARN"]
                    found.append(TaggedResource(_kind(arn), arn, {t["Key"]: t["Value"] for t in item["Tags"]}))
            found += self._untracked_by_tagging({(r.kind, r.id.rsplit("/", 1)[-1]) for r in found})
        except (BotoCoreError, ClientError) as exc:
            raise SiteUnreachable(f"{self.name}: cannot list tagged resources ({exc})") from None
        return found

    def _untracked_by_tagging(self, seen: set[tuple[str, str]]) -> list[TaggedResource]:
        """Auto Scaling groups, launch templates, elastic IPs and key pairs tagged ``managed-by: squall``,
        asked for directly (the tagging API leaves them out), other than those in ``seen``."""
        ec2, groups = self._direct_client("ec2"), self._direct_client("autoscaling")
        found = [TaggedResource("autoscaling:autoScalingGroup", group["AutoScalingGroupARN"], _tags(group["Tags"]))
                 for page in groups.get_paginator("describe_auto_scaling_groups").paginate(Filters=SQUALL_FILTER)
                 for group in page["AutoScalingGroups"]]
        found += [TaggedResource("ec2:launch-template", f"launch-template/{item['LaunchTemplateId']}",
                                 _tags(item.get("Tags")))
                  for page in ec2.get_paginator("describe_launch_templates").paginate(Filters=SQUALL_FILTER)
                  for item in page["LaunchTemplates"]]
        found += [TaggedResource("ec2:elastic-ip", f"elastic-ip/{item['AllocationId']}", _tags(item.get("Tags")))
                  for item in ec2.describe_addresses(Filters=SQUALL_FILTER)["Addresses"]]
        found += [TaggedResource("ec2:key-pair", f"key-pair/{item['KeyPairId']}", _tags(item.get("Tags")))
                  for item in ec2.describe_key_pairs(Filters=SQUALL_FILTER)["KeyPairs"]]
        return [r for r in found if (r.kind, r.id.rsplit("/", 1)[-1]) not in seen]

    def remove(self, resource: TaggedResource) -> None:
        """Delete one leftover (an instance: terminated, and waited for, so what it used can go next)."""
        if resource.kind not in REMOVAL_ORDER:
            raise Refused(f"{resource.id}: remove this {resource.kind} by hand (gc removes {', '.join(REMOVAL_ORDER)})")
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, WaiterError

        client = boto3.client("autoscaling" if resource.kind.startswith("autoscaling:") else "ec2",
                              region_name=self.region)
        item = resource.id.rsplit("/", 1)[-1]
        try:
            _REMOVERS[resource.kind](client, item)
        except ClientError as exc:
            if not _already_gone(exc):
                raise Refused(f"{resource.id}: remove by hand ({exc})") from None
        except (BotoCoreError, WaiterError) as exc:
            raise Refused(f"{resource.id}: remove by hand ({exc})") from None


def _tags(items: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _already_gone(exc) -> bool:
    """AWS's answer for a resource that no longer exists (``InvalidVolume.NotFound``, ``InvalidGroup.NotFound``...)."""
    return "NotFound" in exc.response.get("Error", {}).get("Code", "")


def _delete_key_pair(ec2, key_id: str) -> None:
    """By its name, which every implementation of the API honours (the id is not everywhere)."""
    name = ec2.describe_key_pairs(KeyPairIds=[key_id])["KeyPairs"][0]["KeyName"]
    ec2.delete_key_pair(KeyName=name)


def _delete_group(ec2, group: str) -> None:
    """Revoke every rule that names the group (in other groups too) and its own, then delete it: groups that
    refer to each other would otherwise refuse to go in one pass."""
    referring = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.group-id", "Values": [group]}])
    for other in referring["SecurityGroups"]:
        rules = [rule for rule in other.get("IpPermissions", [])
                 if any(pair.get("GroupId") == group for pair in rule.get("UserIdGroupPairs", []))]
        if rules and other["GroupId"] != group:
            ec2.revoke_security_group_ingress(GroupId=other["GroupId"], IpPermissions=rules)
    own = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    if own.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=own["IpPermissions"])
    if own.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(GroupId=group, IpPermissions=own["IpPermissionsEgress"])
    ec2.delete_security_group(GroupId=group)


def _terminate(ec2, instance: str) -> None:
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance], WaiterConfig={"Delay": 5, "MaxAttempts": 60})


def _detach_and_delete_gateway(ec2, gateway: str) -> None:
    found = ec2.describe_internet_gateways(InternetGatewayIds=[gateway])["InternetGateways"]
    for attachment in (found[0].get("Attachments") or []) if found else []:
        ec2.detach_internet_gateway(InternetGatewayId=gateway, VpcId=attachment["VpcId"])
    ec2.delete_internet_gateway(InternetGatewayId=gateway)


_REMOVERS = {
    "autoscaling:autoScalingGroup": lambda asg, name: asg.delete_auto_scaling_group(AutoScalingGroupName=name,
                                                                                   ForceDelete=True),
    "ec2:instance": _terminate,
    "ec2:natgateway": lambda ec2, i: ec2.delete_nat_gateway(NatGatewayId=i),
    "ec2:launch-template": lambda ec2, i: ec2.delete_launch_template(LaunchTemplateId=i),
    "ec2:volume": lambda ec2, i: ec2.delete_volume(VolumeId=i),
    "ec2:network-interface": lambda ec2, i: ec2.delete_network_interface(NetworkInterfaceId=i),
    "ec2:elastic-ip": lambda ec2, i: ec2.release_address(AllocationId=i),
    "ec2:key-pair": _delete_key_pair,
    "ec2:security-group": _delete_group,
    "ec2:subnet": lambda ec2, i: ec2.delete_subnet(SubnetId=i),
    "ec2:route-table": lambda ec2, i: ec2.delete_route_table(RouteTableId=i),
    "ec2:internet-gateway": _detach_and_delete_gateway,
    "ec2:vpc": lambda ec2, i: ec2.delete_vpc(VpcId=i),
}


def _kind(arn: str) -> str:
    """``arn:aws:ec2:eu-west-1:123:instance/i-0abc`` -> ``ec2:instance``."""
    parts = arn.split(":", 5)
    service, rest = (parts[2], parts[5]) if len(parts) == 6 else ("unknown", arn)
    return f"{service}:{rest.split('/', 1)[0].split(':', 1)[0]}"

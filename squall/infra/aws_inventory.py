"""What carries ``managed-by: squall`` in one AWS region, through the Resource Groups Tagging API.

Used by ``squall gc`` to find resources no stack owns and, with ``--force``,
remove them in dependency order (``REMOVAL_ORDER``: instances first, the VPC
last); a kind not listed there is reported to be removed by hand. Needs
``boto3`` (``pip install 'squall[aws]'``) and AWS credentials in the usual
places (``AWS_ENDPOINT_URL`` points it elsewhere, as the tests do with moto).
"""

from __future__ import annotations

from squall.errors import MissingDependency, Refused, SiteUnreachable
from squall.gc.stacks import TaggedResource

# What may be removed, in the order AWS lets it go: a volume or group still used by an instance, a subnet
# with interfaces, a VPC with anything in it are refused until what uses them is gone.
REMOVAL_ORDER = ("ec2:instance", "ec2:natgateway", "ec2:launch-template", "ec2:volume", "ec2:network-interface",
                 "ec2:elastic-ip", "ec2:security-group", "ec2:subnet", "ec2:route-table", "ec2:internet-gateway",
                 "ec2:vpc")


class AwsTaggedInventory:
    removal_order = REMOVAL_ORDER

    def __init__(self, region: str, client=None):
        self.region = region
        self.name = f"aws:{region}"
        self._client = client

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
        except (BotoCoreError, ClientError) as exc:
            raise SiteUnreachable(f"{self.name}: cannot list tagged resources ({exc})") from None
        return found

    def remove(self, resource: TaggedResource) -> None:
        """Delete one leftover (an instance: terminated, and waited for, so what it used can go next)."""
        if resource.kind not in REMOVAL_ORDER:
            raise Refused(f"{resource.id}: remove this {resource.kind} by hand (gc removes {', '.join(REMOVAL_ORDER)})")
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, WaiterError

        ec2 = boto3.client("ec2", region_name=self.region)
        item = resource.id.rsplit("/", 1)[-1]
        try:
            _REMOVERS[resource.kind](ec2, item)
        except (BotoCoreError, ClientError, WaiterError) as exc:
            raise Refused(f"{resource.id}: remove by hand ({exc})") from None


def _terminate(ec2, instance: str) -> None:
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance], WaiterConfig={"Delay": 5, "MaxAttempts": 60})


def _detach_and_delete_gateway(ec2, gateway: str) -> None:
    found = ec2.describe_internet_gateways(InternetGatewayIds=[gateway])["InternetGateways"]
    for attachment in (found[0].get("Attachments") or []) if found else []:
        ec2.detach_internet_gateway(InternetGatewayId=gateway, VpcId=attachment["VpcId"])
    ec2.delete_internet_gateway(InternetGatewayId=gateway)


_REMOVERS = {
    "ec2:instance": _terminate,
    "ec2:natgateway": lambda ec2, i: ec2.delete_nat_gateway(NatGatewayId=i),
    "ec2:launch-template": lambda ec2, i: ec2.delete_launch_template(LaunchTemplateId=i),
    "ec2:volume": lambda ec2, i: ec2.delete_volume(VolumeId=i),
    "ec2:network-interface": lambda ec2, i: ec2.delete_network_interface(NetworkInterfaceId=i),
    "ec2:elastic-ip": lambda ec2, i: ec2.release_address(AllocationId=i),
    "ec2:security-group": lambda ec2, i: ec2.delete_security_group(GroupId=i),
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

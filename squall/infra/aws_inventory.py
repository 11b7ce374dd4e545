"""What carries ``managed-by: squall`` in one AWS region, through the Resource Groups Tagging API.

Used by ``squall gc`` to find resources no stack owns. Only EC2 instances (the
costly leftovers) can be removed from here; anything else is reported for an
operator to remove by hand. Needs ``boto3`` (``pip install 'squall[aws]'``) and
AWS credentials in the usual places.
"""

from __future__ import annotations

from squall.errors import MissingDependency, Refused, SiteUnreachable
from squall.gc.stacks import TaggedResource


class AwsTaggedInventory:
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
        if resource.kind != "ec2:instance":
            raise Refused(f"{resource.id}: remove this {resource.kind} by hand (gc removes only EC2 instances)")
        import boto3

        boto3.client("ec2", region_name=self.region).terminate_instances(InstanceIds=[resource.id.rsplit("/", 1)[-1]])


def _kind(arn: str) -> str:
    """``arn:aws:ec2:eu-west-1:123:instance/i-0abc`` -> ``ec2:instance``."""
    parts = arn.split(":", 5)
    service, rest = (parts[2], parts[5]) if len(parts) == 6 else ("unknown", arn)
    return f"{service}:{rest.split('/', 1)[0].split(':', 1)[0]}"

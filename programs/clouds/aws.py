"""AWS resources for the components: VPC and head node, GPU Auto Scaling groups, warm pools, job nodes.

Firewall rules are separate ``aws.vpc`` rule resources (taggable, so each
carries its owner tags and role). Every volume is encrypted, every instance
requires IMDSv2, and only the head node may get a public address.
"""

from __future__ import annotations

import base64
from typing import Sequence

import pulumi
import pulumi_aws as aws

from squall.programs.clouds import BuiltCluster, machine_user_data, with_role
from squall.programs.cloud_init import UserData, render_user_data
from squall.programs.components import GpuNodePoolArgs, JobStackArgs, OrgClusterArgs, Placement, VmBankArgs
from squall.programs.design import Subnet as SubnetDesign, fsx_capacity_gb

DEBIAN_OWNER = "136693071363"  # Debian's AWS account
DEBIAN_IMAGES = "debian-12-amd64-*"
GPU_IMAGES = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
IMDS_V2 = aws.ec2.InstanceMetadataOptionsArgs(http_tokens="required", http_endpoint="enabled")
STORAGE_PORTS = {"efs": [(2049, 2049)], "fsx-lustre": [(988, 988), (1018, 1023)]}


def image(name_or_id: str, owner: str, opts: pulumi.ResourceOptions) -> pulumi.Output[aws.ec2.GetAmiResult]:
    """The AMI a stack file names, always looked up: an ``ami-`` id by its id, anything else as a name filter
    (newest match). The lookup also gives the image's own root device name, which launch templates need."""
    by = "image-id" if name_or_id.startswith("ami-") else "name"
    return aws.ec2.get_ami_output(
        most_recent=True, owners=[owner] if by == "name" else None,
        filters=[aws.ec2.GetAmiFilterArgs(name=by, values=[name_or_id])],
        opts=pulumi.InvokeOutputOptions(parent=opts.parent))


def ingress(name: str, group: pulumi.Input[str], tags: dict[str, str], opts: pulumi.ResourceOptions, *,
            cidr: str | None = None, source_group: pulumi.Input[str] | None = None,
            ports: tuple[int, int] | None = None, description: str) -> aws.vpc.SecurityGroupIngressRule:
    return aws.vpc.SecurityGroupIngressRule(
        name, security_group_id=group, cidr_ipv4=cidr, referenced_security_group_id=source_group,
        ip_protocol="tcp" if ports else "-1", from_port=ports[0] if ports else None,
        to_port=ports[1] if ports else None, description=description, tags=tags, opts=opts)


def egress(name: str, group: pulumi.Input[str], tags: dict[str, str], opts: pulumi.ResourceOptions, *,
           cidr: str | None = None, target_group: pulumi.Input[str] | None = None,
           description: str) -> aws.vpc.SecurityGroupEgressRule:
    return aws.vpc.SecurityGroupEgressRule(
        name, security_group_id=group, cidr_ipv4=cidr, referenced_security_group_id=target_group,
        ip_protocol="-1", description=description, tags=tags, opts=opts)


def security_group(name: str, vpc_id: pulumi.Input[str], tags: dict[str, str], description: str,
                   opts: pulumi.ResourceOptions) -> aws.ec2.SecurityGroup:
    """A group with no inline rules: AWS's default allow-all egress is revoked by managing rules separately."""
    return aws.ec2.SecurityGroup(name, vpc_id=vpc_id, description=description, revoke_rules_on_delete=True,
                                 tags={**tags, "Name": name}, opts=opts)


def org_cluster(name: str, args: OrgClusterArgs, opts: pulumi.ResourceOptions) -> BuiltCluster:
    cluster = args.cluster
    spec = cluster.spec
    assert spec.network is not None and spec.head_node_flavour is not None  # guaranteed by the design step
    tags = cluster.tags
    vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=spec.network.cidr, enable_dns_hostnames=True,
                      enable_dns_support=True, tags={**tags, "Name": name}, opts=opts)
    private = [aws.ec2.Subnet(s.name, vpc_id=vpc.id, cidr_block=s.cidr, availability_zone=s.zone,
                              map_public_ip_on_launch=False, tags=with_role({**tags, "Name": s.name}, "compute"),
                              opts=opts)
               for s in cluster.private_subnets]
    private_routes = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id, tags=tags, opts=opts)
    head_subnet = private[0]
    public_subnets = [s for s in cluster.subnets if s.public]
    if public_subnets:
        head_subnet = _public_subnet_and_nat(name, vpc, public_subnets[0], private_routes, tags, opts)
    for subnet, design in zip(private, cluster.private_subnets):
        aws.ec2.RouteTableAssociation(f"{design.name}-routes", subnet_id=subnet.id,
                                      route_table_id=private_routes.id, opts=opts)

    head_tags, compute_tags = with_role(tags, "head"), with_role(tags, "compute")
    head_sg = security_group(f"{name}-head", vpc.id, head_tags, "Squall head node", opts)
    compute_sg = security_group(f"{name}-compute", vpc.id, compute_tags, "Squall compute nodes", opts)
    for index, cidr in enumerate(spec.network.operator_cidrs):
        ingress(f"{name}-head-ssh-{index}", head_sg.id, head_tags, opts, cidr=cidr, ports=(22, 22),
                description=f"SSH from operators {cidr}")
    ingress(f"{name}-head-from-compute", head_sg.id, head_tags, opts, source_group=compute_sg.id,
            description="anything from compute nodes")
    egress(f"{name}-head-out", head_sg.id, head_tags, opts, cidr="0.0.0.0/0",
           description="head node: packages and the controller")
    ingress(f"{name}-compute-intra", compute_sg.id, compute_tags, opts, source_group=compute_sg.id,
            description="intra-cluster")
    ingress(f"{name}-compute-from-head", compute_sg.id, compute_tags, opts, source_group=head_sg.id,
            description="from the head node")
    egress(f"{name}-compute-out", compute_sg.id, compute_tags, opts, cidr=spec.network.cidr,
           description="the cluster network only")

    if spec.shared_fs is not None:
        _shared_filesystem(name, args, vpc.id, private, [head_sg, compute_sg], opts)

    user_data = machine_user_data("head", cluster.name, spec, args.controller_public_key)
    head = aws.ec2.Instance(
        f"{name}-head", ami=image(DEBIAN_IMAGES, DEBIAN_OWNER, opts).id, instance_type=spec.head_node_flavour,
        subnet_id=head_subnet.id, vpc_security_group_ids=[head_sg.id],
        associate_public_ip_address=bool(public_subnets), metadata_options=IMDS_V2,
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(encrypted=True, volume_size=50, volume_type="gp3"),
        user_data=user_data,  # a changed boot script must not replace the head (and lose its state)
        tags=with_role({**tags, "Name": f"{name}-head"}, "head"), volume_tags=tags, opts=opts)
    placement = Placement(subnet_ids=[s.id for s in private], security_group_ids=[compute_sg.id], vpc_id=vpc.id,
                          intra_cidr=spec.network.cidr)
    return BuiltCluster(placement, head.private_ip, head.public_ip if public_subnets else None)


def _public_subnet_and_nat(name: str, vpc: aws.ec2.Vpc, design: SubnetDesign, private_routes: aws.ec2.RouteTable,
                           tags: dict[str, str], opts: pulumi.ResourceOptions) -> aws.ec2.Subnet:
    """The public subnet (head node, NAT gateway) and the private subnets' route out through the NAT."""
    public_tags = with_role(tags, "public")
    subnet = aws.ec2.Subnet(design.name, vpc_id=vpc.id, cidr_block=design.cidr, availability_zone=design.zone,
                            map_public_ip_on_launch=False, tags={**public_tags, "Name": design.name}, opts=opts)
    gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=public_tags, opts=opts)
    routes = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, tags=public_tags, opts=opts,
                                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)])
    aws.ec2.RouteTableAssociation(f"{design.name}-routes", subnet_id=subnet.id, route_table_id=routes.id, opts=opts)
    address = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=public_tags, opts=opts)
    nat = aws.ec2.NatGateway(f"{name}-nat", subnet_id=subnet.id, allocation_id=address.id, tags=public_tags,
                             opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[gateway])))
    aws.ec2.Route(f"{name}-private-out", route_table_id=private_routes.id, destination_cidr_block="0.0.0.0/0",
                  nat_gateway_id=nat.id, opts=opts)
    return subnet


def _shared_filesystem(name: str, args: OrgClusterArgs, vpc_id: pulumi.Input[str], subnets: list[aws.ec2.Subnet],
                       clients: list[aws.ec2.SecurityGroup], opts: pulumi.ResourceOptions) -> None:
    cluster = args.cluster
    fs = cluster.spec.shared_fs
    assert fs is not None and cluster.spec.network is not None
    tags = with_role(cluster.tags, "storage")
    group = security_group(f"{name}-storage", vpc_id, tags, "Squall shared filesystem", opts)
    rules = []
    for client_index, client in enumerate(clients):
        for port_index, ports in enumerate(STORAGE_PORTS[fs.kind]):
            rules.append(ingress(f"{name}-storage-{client_index}-{port_index}", group.id, tags, opts,
                                 source_group=client.id, ports=ports, description=f"{fs.kind} clients"))
    if fs.kind == "fsx-lustre":  # Lustre servers talk to each other on the same ports; FSx refuses a group without
        rules += [ingress(f"{name}-storage-self-{port_index}", group.id, tags, opts, source_group=group.id,
                          ports=ports, description="Lustre servers among themselves")
                  for port_index, ports in enumerate(STORAGE_PORTS[fs.kind])]
    rules.append(egress(f"{name}-storage-out", group.id, tags, opts, cidr=cluster.spec.network.cidr,
                        description="the cluster network only"))
    after_rules = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=rules))
    if fs.kind == "efs":
        filesystem = aws.efs.FileSystem(f"{name}-shared", encrypted=True, creation_token=f"{name}-shared",
                                        tags={**tags, "Name": f"{name}-shared"}, opts=opts)
        for subnet, design in zip(subnets, cluster.private_subnets):
            aws.efs.MountTarget(f"{design.name}-shared", file_system_id=filesystem.id, subnet_id=subnet.id,
                                security_groups=[group.id], opts=opts)
    else:
        aws.fsx.LustreFileSystem(f"{name}-shared", storage_capacity=fsx_capacity_gb(fs.size_gb),
                                 deployment_type="SCRATCH_2", subnet_ids=subnets[0].id,
                                 security_group_ids=[group.id], tags={**tags, "Name": f"{name}-shared"},
                                 opts=after_rules)


def launch_template(name: str, ami: pulumi.Output[aws.ec2.GetAmiResult], instance_type: str, user_data: str,
                    placement: Placement, tags: dict[str, str], opts: pulumi.ResourceOptions,
                    root_gb: int = 100) -> aws.ec2.LaunchTemplate:
    """Private, encrypted, IMDSv2-only machines; tags reach the instances and their volumes."""
    return aws.ec2.LaunchTemplate(
        name, image_id=ami.id, instance_type=instance_type, update_default_version=True,
        user_data=base64.b64encode(user_data.encode()).decode(),
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_tokens="required", http_endpoint="enabled"),
        network_interfaces=[aws.ec2.LaunchTemplateNetworkInterfaceArgs(
            associate_public_ip_address="false", delete_on_termination="true",
            security_groups=list(placement.security_group_ids))],
        block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name=ami.root_device_name, ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                encrypted="true", volume_size=root_gb, volume_type="gp3", delete_on_termination="true"))],
        tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                            for kind in ("instance", "volume")],
        tags=tags, opts=opts)


def propagated(tags: dict[str, str]) -> list[aws.autoscaling.GroupTagArgs]:
    return [aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=True) for k, v in tags.items()]


def gpu_node_pool(name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions) -> int:
    pool = args.pool
    tags = with_role(pool.tags, "pool")
    user_data = machine_user_data("pool", pool.name, args.cluster.spec, args.controller_public_key)
    template = launch_template(f"{name}-nodes", image(GPU_IMAGES, "amazon", opts), pool.spec.instance_type,
                               user_data, args.placement, tags, opts)
    aws.autoscaling.Group(
        f"{name}-nodes", min_size=pool.spec.min, desired_capacity=pool.spec.desired, max_size=pool.spec.max,
        vpc_zone_identifiers=list(args.placement.subnet_ids),
        launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version="$Latest"),
        tags=propagated(tags), opts=opts)
    return pool.spec.desired


def vm_bank(name: str, args: VmBankArgs, opts: pulumi.ResourceOptions) -> dict[str, pulumi.Output[str]]:
    """A warm pool of stopped, pre-initialised instances behind an empty Auto Scaling group, one per slot.

    AWS picks which warm instance serves a claim: no per-slot address is known here."""
    bank = args.bank
    tags = with_role({**bank.tags, **bank.metadata}, "bank")
    user_data = machine_user_data("bank", bank.name, args.cluster.spec, args.controller_public_key)
    template = launch_template(f"{name}-nodes", image(bank.spec.image, "self", opts), bank.spec.flavour,
                               user_data, args.placement, tags, opts)
    aws.autoscaling.Group(
        f"{name}-nodes", min_size=0, desired_capacity=0, max_size=bank.spec.max_size,
        vpc_zone_identifiers=list(args.placement.subnet_ids),
        launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version="$Latest"),
        warm_pool=aws.autoscaling.GroupWarmPoolArgs(
            pool_state="Stopped", min_size=len(bank.slots),
            max_group_prepared_capacity=max(bank.spec.idle_target, len(bank.slots))),
        tags=propagated(tags), opts=opts)
    return {}


def job_stack(name: str, args: JobStackArgs, opts: pulumi.ResourceOptions) -> list[pulumi.Output[str]]:
    """N private job nodes in one group that talks only to itself (and takes SSH from the head node)."""
    job, placement = args.job, args.placement
    if placement.vpc_id is None or not placement.subnet_ids or not placement.ssh_from:
        raise ValueError("JobStack on aws needs placement.vpc_id, subnet_ids and ssh_from")
    tags = with_role(job.tags, "job")
    group = security_group(f"{name}-nodes", placement.vpc_id, tags, "Squall job: intra-job only", opts)
    ingress(f"{name}-intra", group.id, tags, opts, source_group=group.id, description="within the job")
    for index, cidr in enumerate(placement.ssh_from):
        ingress(f"{name}-ssh-{index}", group.id, tags, opts, cidr=cidr, ports=(22, 22),
                description=f"SSH from the head node/controller {cidr}")
    egress(f"{name}-out", group.id, tags, opts, target_group=group.id, description="within the job only")
    user_data = render_user_data(UserData("job", job.name, args.controller_public_key,
                                          intra_cidr=placement.intra_cidr, ssh_from=placement.ssh_from))
    ami = (image(GPU_IMAGES, "amazon", opts) if job.gpu else image(DEBIAN_IMAGES, DEBIAN_OWNER, opts)).id
    return [_job_node(f"{name}-node-{index}", ami, job.flavour, placement.subnet_ids, index, group.id,
                      user_data, tags, opts).private_ip
            for index in range(job.nodes)]


def _job_node(name: str, ami: pulumi.Output[str], flavour: str, subnets: Sequence[pulumi.Input[str]],
              index: int, group: pulumi.Output[str], user_data: str, tags: dict[str, str],
              opts: pulumi.ResourceOptions) -> aws.ec2.Instance:
    return aws.ec2.Instance(
        name, ami=ami, instance_type=flavour, subnet_id=subnets[index % len(subnets)],
        vpc_security_group_ids=[group], associate_public_ip_address=False, metadata_options=IMDS_V2,
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(encrypted=True, volume_size=50, volume_type="gp3"),
        user_data=user_data, tags={**tags, "Name": name}, volume_tags=tags, opts=opts)

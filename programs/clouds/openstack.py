"""OpenStack resources for the components: network and head node, GPU servers, the idle VM bank, job nodes.

Security groups drop OpenStack's default allow-all egress rules
(``delete_default_rules``) and get explicit rules. Rules cannot be tagged, so
each carries its role in its description. Every server boots from a volume of
the organisation's encrypted volume type; only the head node gets a floating IP.
"""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from squall.programs.clouds import BuiltCluster, described, machine_user_data, with_role
from squall.programs.cloud_init import UserData, render_user_data
from squall.programs.components import GpuNodePoolArgs, JobStackArgs, OrgClusterArgs, Placement, VmBankArgs
from squall.programs.design import ClusterDesign


def tag_list(tags: dict[str, str]) -> list[str]:
    """Networking resources take tags as strings; ``key=value`` keeps them greppable."""
    return [f"{key}={value}" for key, value in tags.items()]


def image_id(name: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    return openstack.images.get_image_output(name=name, most_recent=True,
                                             opts=pulumi.InvokeOutputOptions(parent=opts.parent)).id


def secgroup(name: str, role: str, tags: dict[str, str], opts: pulumi.ResourceOptions) -> openstack.networking.SecGroup:
    return openstack.networking.SecGroup(name, name=name, description=described(role, "Squall"),
                                         delete_default_rules=True, tags=tag_list(with_role(tags, role)), opts=opts)


def rule(name: str, group: openstack.networking.SecGroup, role: str, direction: str, text: str,
         opts: pulumi.ResourceOptions, *, cidr: str | None = None, remote_group: pulumi.Input[str] | None = None,
         port: int | None = None) -> openstack.networking.SecGroupRule:
    return openstack.networking.SecGroupRule(
        name, security_group_id=group.id, direction=direction, ethertype="IPv4",
        protocol="tcp" if port else None, port_range_min=port, port_range_max=port,
        remote_ip_prefix=cidr, remote_group_id=remote_group, description=described(role, text), opts=opts)


def boot_volume(image: pulumi.Input[str], cluster: ClusterDesign) -> openstack.compute.InstanceBlockDeviceArgs:
    assert cluster.spec.openstack is not None
    return openstack.compute.InstanceBlockDeviceArgs(
        source_type="image", uuid=image, destination_type="volume", boot_index=0, delete_on_termination=True,
        volume_size=cluster.spec.openstack.root_volume_gb, volume_type=cluster.spec.openstack.encrypted_volume_type)


def server(name: str, cluster: ClusterDesign, flavour: str, image: pulumi.Input[str], placement: Placement,
           metadata: dict[str, str], user_data: str, opts: pulumi.ResourceOptions, *, index: int = 0,
           group: pulumi.Input[str] | None = None) -> openstack.compute.Instance:
    """A private server on the cluster network (no floating IP), booted from an encrypted volume."""
    assert placement.network_id is not None
    return openstack.compute.Instance(
        name, name=name, flavor_name=flavour, availability_zone=cluster.zones[index % len(cluster.zones)],
        block_devices=[boot_volume(image, cluster)],
        networks=[openstack.compute.InstanceNetworkArgs(uuid=placement.network_id)],
        security_groups=list(placement.security_group_names), metadata=metadata, user_data=user_data,
        scheduler_hints=[openstack.compute.InstanceSchedulerHintArgs(group=group)] if group else None,
        opts=opts)


def org_cluster(name: str, args: OrgClusterArgs, opts: pulumi.ResourceOptions) -> BuiltCluster:
    cluster = args.cluster
    spec = cluster.spec
    assert spec.network is not None and spec.openstack is not None and spec.head_node_flavour is not None
    tags = cluster.tags
    external = openstack.networking.get_network_output(name=spec.openstack.external_network, external=True,
                                                       opts=pulumi.InvokeOutputOptions(parent=opts.parent))
    network = openstack.networking.Network(f"{name}-net", name=name, admin_state_up=True, tags=tag_list(tags),
                                           opts=opts)
    design = cluster.private_subnets[0]
    subnet = openstack.networking.Subnet(design.name, name=design.name, network_id=network.id, cidr=design.cidr,
                                         ip_version=4, tags=tag_list(tags), opts=opts)
    router = openstack.networking.Router(f"{name}-router", name=name, external_network_id=external.id,
                                         tags=tag_list(tags), opts=opts)
    openstack.networking.RouterInterface(f"{name}-router-interface", router_id=router.id, subnet_id=subnet.id,
                                         opts=opts)

    head_sg = secgroup(f"{name}-head", "head", tags, opts)
    compute_sg = secgroup(f"{name}-compute", "compute", tags, opts)
    for index, cidr in enumerate(spec.network.operator_cidrs):
        rule(f"{name}-head-ssh-{index}", head_sg, "head", "ingress", f"SSH from operators {cidr}", opts,
             cidr=cidr, port=22)
    rule(f"{name}-head-from-compute", head_sg, "head", "ingress", "from compute nodes", opts,
         remote_group=compute_sg.id)
    rule(f"{name}-head-out", head_sg, "head", "egress", "packages and the controller", opts, cidr="0.0.0.0/0")
    rule(f"{name}-compute-intra", compute_sg, "compute", "ingress", "intra-cluster", opts, remote_group=compute_sg.id)
    rule(f"{name}-compute-from-head", compute_sg, "compute", "ingress", "from the head node", opts,
         remote_group=head_sg.id)
    rule(f"{name}-compute-out", compute_sg, "compute", "egress", "the cluster network only", opts,
         cidr=spec.network.cidr)

    keypair = openstack.compute.Keypair(f"{name}-operator", name=f"{name}-operator",
                                        public_key=spec.openstack.public_key, opts=opts)
    data_volume = _shared_storage(name, cluster, network, subnet, opts)
    port = openstack.networking.Port(f"{name}-head", name=f"{name}-head", network_id=network.id,
                                     fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=subnet.id)],
                                     security_group_ids=[head_sg.id], tags=tag_list(with_role(tags, "head")),
                                     opts=opts)
    devices = [boot_volume(image_id(spec.openstack.head_image, opts), cluster)]
    if data_volume is not None:
        devices.append(openstack.compute.InstanceBlockDeviceArgs(
            source_type="volume", uuid=data_volume.id, destination_type="volume", boot_index=-1,
            delete_on_termination=False))
    user_data = machine_user_data("head", cluster.name, spec, args.controller_public_key,
                                  nfs_export_to=spec.network.cidr if data_volume is not None else None)
    head = openstack.compute.Instance(
        f"{name}-head", name=f"{name}-head", flavor_name=spec.head_node_flavour, availability_zone=cluster.zones[0],
        key_pair=keypair.name, block_devices=devices, networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
        metadata=with_role(tags, "head"), user_data=user_data, opts=opts)
    public_address = None
    if spec.network.operator_cidrs:
        floating = openstack.networking.FloatingIp(f"{name}-head", pool=spec.openstack.external_network,
                                                   tags=tag_list(with_role(tags, "head")), opts=opts)
        openstack.networking.FloatingIpAssociate(f"{name}-head", floating_ip=floating.address, port_id=port.id,
                                                 opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                                                     depends_on=[head])))
        public_address = floating.address
    placement = Placement(network_id=network.id, security_group_names=[compute_sg.name],
                          intra_cidr=spec.network.cidr)
    return BuiltCluster(placement, head.access_ip_v4, public_address)


def _shared_storage(name: str, cluster: ClusterDesign, network: openstack.networking.Network,
                    subnet: openstack.networking.Subnet,
                    opts: pulumi.ResourceOptions) -> openstack.blockstorage.Volume | None:
    """A Manila NFS share for the cluster network, or a Cinder volume the head node exports (returned)."""
    fs, spec = cluster.spec.shared_fs, cluster.spec
    if fs is None:
        return None
    assert spec.network is not None and spec.openstack is not None
    metadata = with_role(cluster.tags, "storage")
    if fs.kind == "manila":
        share_network = openstack.sharedfilesystem.ShareNetwork(
            f"{name}-shared", name=f"{name}-shared", neutron_net_id=network.id, neutron_subnet_id=subnet.id,
            opts=opts)
        share = openstack.sharedfilesystem.Share(
            f"{name}-shared", name=f"{name}-shared", share_proto="NFS", size=fs.size_gb,
            share_network_id=share_network.id, metadata=metadata, opts=opts)
        openstack.sharedfilesystem.ShareAccess(f"{name}-shared", share_id=share.id, access_type="ip",
                                               access_to=spec.network.cidr, access_level="rw", opts=opts)
        return None
    return openstack.blockstorage.Volume(f"{name}-shared", name=f"{name}-shared", size=fs.size_gb,
                                         volume_type=spec.openstack.encrypted_volume_type,
                                         availability_zone=cluster.zones[0], metadata=metadata, opts=opts)


def gpu_node_pool(name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions) -> int:
    """``desired`` GPU servers spread by an anti-affinity server group (OpenStack has no scaling group)."""
    cluster, pool = args.cluster, args.pool
    assert cluster.spec.openstack is not None
    group = openstack.compute.ServerGroup(f"{name}-group", name=pool.name, policies="anti-affinity", opts=opts)
    user_data = machine_user_data("pool", pool.name, cluster.spec, args.controller_public_key)
    image = image_id(cluster.spec.openstack.gpu_image, opts)
    metadata = with_role(pool.tags, "pool")
    for index in range(pool.spec.desired):
        server(f"{name}-node-{index}", cluster, pool.spec.instance_type, image, args.placement, metadata,
               user_data, opts, index=index, group=group.id)
    return pool.spec.desired


def vm_bank(name: str, args: VmBankArgs, opts: pulumi.ResourceOptions) -> dict[str, pulumi.Output[str]]:
    """One server per slot; the metadata says which bank it belongs to and whether it is idle or claimed.

    Returns each slot's address (the bank's reconcile records them in the store)."""
    cluster, bank = args.cluster, args.bank
    group = openstack.compute.ServerGroup(f"{name}-group", name=bank.name, policies="soft-anti-affinity",
                                          opts=opts)
    user_data = machine_user_data("bank", bank.name, cluster.spec, args.controller_public_key)
    image = image_id(bank.spec.image, opts)
    metadata = with_role({**bank.tags, **bank.metadata}, "bank")
    claimed = {**metadata, "squall-state": "claimed"}
    return {str(slot): server(f"{name}-vm-{slot}", cluster, bank.spec.flavour, image, args.placement,
                              claimed if slot in bank.claimed else metadata, user_data, opts, index=slot,
                              group=group.id).access_ip_v4
            for slot in bank.slots}


def job_stack(name: str, args: JobStackArgs, opts: pulumi.ResourceOptions) -> list[pulumi.Output[str]]:
    cluster, job, placement = args.cluster, args.job, args.placement
    assert cluster.spec.openstack is not None
    if placement.network_id is None or not placement.ssh_from:
        raise ValueError("JobStack on openstack needs placement.network_id and ssh_from")
    group = secgroup(f"{name}-nodes", "job", job.tags, opts)
    rule(f"{name}-intra", group, "job", "ingress", "within the job", opts, remote_group=group.id)
    for index, cidr in enumerate(placement.ssh_from):
        rule(f"{name}-ssh-{index}", group, "job", "ingress", f"SSH from the head node/controller {cidr}", opts,
             cidr=cidr, port=22)
    rule(f"{name}-out", group, "job", "egress", "within the job only", opts, remote_group=group.id)
    user_data = render_user_data(UserData("job", job.name, args.controller_public_key,
                                          intra_cidr=placement.intra_cidr, ssh_from=placement.ssh_from))
    template = cluster.spec.job_stack
    image = image_id(cluster.spec.openstack.gpu_image if job.gpu else
                     template.image if template and template.image else cluster.spec.openstack.head_image, opts)
    job_placement = Placement(network_id=placement.network_id, security_group_names=[group.name])
    metadata = with_role(job.tags, "job")
    return [server(f"{name}-node-{index}", cluster, job.flavour, image, job_placement, metadata, user_data, opts,
                   index=index).access_ip_v4
            for index in range(job.nodes)]

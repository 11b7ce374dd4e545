"""The stack programs: one function per ``squall:kind``, called by ``Pulumi.yaml`` and inline by the
Automation API alike. Each takes validated settings; only ``run_configured`` reads ``pulumi.Config``.
"""

from __future__ import annotations

import gc
from typing import Callable

import pulumi

from squall.programs.components import (
    GpuNodePool,
    GpuNodePoolArgs,
    JobStack,
    JobStackArgs,
    KubernetesWork,
    OrgCluster,
    OrgClusterArgs,
    Placement,
    VmBank,
    VmBankArgs,
)
from squall.programs.cloud_init import JOB_USER, JOB_WORK_ROOT
from squall.programs.design import design, design_job_stack, job_machine, resize
from squall.programs.settings import JobStackConfig, OrgStackConfig


def tune_collector() -> None:
    """Keep declaring resources linear in their number.

    Each resource leaves thousands of small tracked objects (outputs, futures,
    tasks); with the default thresholds the collector's full passes re-walk them
    and the provider SDKs' own objects, so 1,000 nodes cost 3-4 times as much
    per node as 100 (bench/run.py). Freezing what is already loaded and
    collecting the young generation less often keeps the per-node cost flat.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def org_program(config: OrgStackConfig) -> None:
    """The organisation's persistent cluster (AWS, OpenStack), its GPU pools and its idle VM banks."""
    tune_collector()
    cluster = resize(design(config.org, pulumi.get_stack(), config.store), config.pool_sizes, config.bank_sizes, config.bank_slots,
                     config.bank_claimed)
    key = config.controller_public_key
    placement = Placement()
    if cluster.spec.cloud != "kubernetes":
        org = OrgCluster(cluster.name, OrgClusterArgs(cluster, key))
        placement = org.placement
        pulumi.export("head_address", org.head_address)
        pulumi.export("public_address", org.public_address)
        pulumi.export("network_id", placement.network_id or placement.vpc_id)
        pulumi.export("subnet_ids", list(placement.subnet_ids))
        pulumi.export("intra_cidr", placement.intra_cidr)
    else:
        pulumi.export("namespace", cluster.namespace)
    pools = {pool.spec.name: GpuNodePool(pool.name, GpuNodePoolArgs(cluster, pool, key, placement)).desired
             for pool in cluster.pools}
    banks = {bank.spec.name: VmBank(bank.name, VmBankArgs(cluster, bank, key, placement)).servers
             for bank in cluster.banks}
    pulumi.export("pools", pools)
    pulumi.export("banks", banks)


def job_program(config: JobStackConfig) -> None:
    """One cloud job's ephemeral stack, tagged with its expiry."""
    tune_collector()
    cluster = design(config.org, pulumi.get_stack())
    settings = config.job
    machine = job_machine(config.org, settings.cpus, settings.memory_gib, settings.gpus) \
        if cluster.spec.cloud != "kubernetes" else None
    job = design_job_stack(cluster, settings.id, now=settings.created_at, nodes=settings.nodes,
                           store=settings.store, machine=machine)
    where = config.placement
    placement = Placement(subnet_ids=where.subnet_ids, vpc_id=where.vpc_id, network_id=where.network_id,
                          intra_cidr=where.intra_cidr, ssh_from=tuple(where.ssh_from))
    work, opts = None, None
    if cluster.spec.cloud == "kubernetes":
        work = KubernetesWork(settings.image, settings.command, settings.tasks, settings.cpus, settings.memory_gib,
                              settings.gpus, settings.walltime, settings.volume_gib)
        if settings.kube_context:
            import pulumi_kubernetes as k8s

            cluster_provider = k8s.Provider(f"{job.name}-cluster", context=settings.kube_context)
            opts = pulumi.ResourceOptions(providers=[cluster_provider])
    stack = JobStack(job.name, JobStackArgs(cluster, job, config.controller_public_key, placement, work), opts)
    pulumi.export("nodes", stack.nodes)
    pulumi.export("job_user", JOB_USER)  # made by cloud-init with the controller's key; the runtime comes at staging
    pulumi.export("work_root", JOB_WORK_ROOT)
    pulumi.export("expires_at", job.expires_at)
    pulumi.export("store", config.job.store)


PROGRAMS: dict[str, Callable] = {"org": org_program, "job": job_program}


def run_configured() -> None:
    """The program ``Pulumi.yaml`` runs: settings from the stack's ``squall:`` config."""
    from squall.programs.stack_files import resolve

    config = pulumi.Config("squall")
    raw = {key: config.get_object(key) for key in
           ("org", "pool_sizes", "bank_sizes", "bank_slots", "bank_claimed", "job", "placement")
           if config.get(key) is not None}
    for key in ("kind", "org_stack", "controller_public_key"):
        if config.get(key) is not None:
            raw[key] = config.get(key)
    settings = resolve(raw, f"stack {pulumi.get_stack()}")  # refuses an unknown kind, naming it
    PROGRAMS[str(raw["kind"])](settings)

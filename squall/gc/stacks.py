"""Garbage collection of stacks: ephemeral stacks past their expiry, and resources no stack owns.

Job and environment stacks carry an expiry (in the store, and as the job
stack's ``expires_at`` output for stacks the store does not know); past it,
and with no controller driving the job, they are destroyed. Resources tagged
``managed-by: squall`` whose ``squall:stack`` tag names no stack in the backend
are leftovers (a stack removed by hand, state lost) — this store's only when
their ``squall:store`` tag says so: reported, and removed only with
``--force``, in each cloud's dependency order (groups that relaunch machines
first, instances before the volumes, interfaces and groups they use, networks
last); one that cannot be removed is reported ``by-hand`` with its id and why,
and the rest still goes. A leftover of another store (two stores, each with
its own backend, may share one cloud account) is only reported — removed only
past its ``squall:expires`` and with ``include_foreign_expired``. Every action
is journaled.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from squall.errors import InvalidInput, SquallError
from squall.gc.actions import GcAction
from squall.gc.clouds.tagged import TaggedInventory, TaggedResource
from squall.gc.sites import unless_uncollected
from squall.infra import records
from squall.infra.driver import Engine, StackName
from squall.store import Store

EPHEMERAL = ("job", "env")
BACKEND = "pulumi"


def plan_stack_gc(store: Store, engine: Engine, home: Path, now: float, inventories: list[TaggedInventory],
                  include_foreign_expired: bool = False,
                  discard_uncollected: bool = False) -> list[tuple[GcAction, StackName | None, object]]:
    plan: list[tuple[GcAction, StackName | None, object]] = []
    try:
        names = engine.stacks()
    except SquallError as exc:
        return [(GcAction(BACKEND, "stack", "*", None, "error", exc.message), None, None)]
    for name in names:
        try:
            stack = StackName.parse(name)
        except InvalidInput:
            continue  # not one of Squall's stacks
        if stack.kind not in EPHEMERAL:
            continue
        plan.append((_stack_action(store, engine, stack, now, include_foreign_expired, discard_uncollected),
                     stack, None))
    known = set(names)
    for inventory in inventories:
        try:
            found = inventory.tagged()
        except SquallError as exc:
            plan.append((GcAction(inventory.name, "site", inventory.name, None, "error", exc.message), None, None))
            continue
        for resource in found:
            owner = resource.tags.get("squall:stack")
            if owner in known:
                continue
            verdict, reason = _leftover(store, resource, now, include_foreign_expired)
            action = GcAction(inventory.name, resource.kind, resource.id, resource.tags.get("squall:job"),
                              verdict, reason)
            plan.append((action, None, (inventory, resource)))
    return plan


def _leftover(store: Store, resource: TaggedResource, now: float, include_foreign_expired: bool) -> tuple[str, str]:
    """``orphan`` (this store's: removed with --force), ``remove`` (another store's, expired, and asked) or
    ``foreign``, with why."""
    owner = resource.tags.get("squall:stack")
    gone = f"stack {owner} does not exist here" if owner else "no squall:stack tag"
    made_by = resource.tags.get("squall:store")
    if made_by == store.store_id:
        return "orphan", gone
    whose = f"store {made_by}" if made_by else "no squall:store tag of this store"
    expires = resource.tags.get("squall:expires", "")
    if not expires.isdigit() or int(expires) > now:
        return "foreign", f"{gone}, but not this store's ({whose}{', not expired' if expires.isdigit() else ''}): left alone"
    if include_foreign_expired:
        return "remove", f"{gone}; another store's ({whose}), expired {int(now - int(expires))} s ago"
    return "foreign", (f"{gone}, not this store's ({whose}), expired {int(now - int(expires))} s ago: "
                       "--include-foreign-expired removes it")


def _stack_action(store: Store, engine: Engine, stack: StackName, now: float,
                  include_foreign_expired: bool, discard_uncollected: bool) -> GcAction:
    """Expired stacks of this store go — unless their job's finished outputs, on its machines, were never
    collected; another store's (one backend, two stores) only past expiry and asked."""
    record = records.stack(store, str(stack))
    job_id = record.job_id if record else (stack.name if stack.kind == "job" else None)
    expires = record.expires_at if record and record.expires_at else None
    outputs = {} if record else (engine.outputs(stack) or {})
    if expires is None:
        expires = (outputs or engine.outputs(stack) or {}).get("expires_at")
    if job_id and store.locks.controller_alive(job_id):
        return GcAction(BACKEND, "stack", str(stack), job_id, "keep", "a controller is driving this job")
    owner = outputs.get("store")
    if record is None and owner != store.store_id:
        whose = f"store {owner}" if owner else "no record in this store"
        if expires is None or float(expires) > now or not include_foreign_expired:
            hint = "" if expires is None or float(expires) > now else ": --include-foreign-expired removes it"
            return GcAction(BACKEND, "stack", str(stack), job_id, "foreign", f"not this store's ({whose}){hint}")
        return GcAction(BACKEND, "stack", str(stack), job_id, "remove",
                        f"another store's ({whose}), expired {int(now - float(expires))} s ago")
    if expires is None:
        return GcAction(BACKEND, "stack", str(stack), job_id, "keep", "no expiry known")
    if float(expires) <= now:
        action, reason = unless_uncollected(store, job_id, discard_uncollected,
                                            f"expired {int(now - float(expires))} s ago")
        return GcAction(BACKEND, "stack", str(stack), job_id, action, reason)
    return GcAction(BACKEND, "stack", str(stack), job_id, "keep", f"expires in {int(float(expires) - now)} s")


def collect_stacks(store: Store, engine: Engine, home: Path, *, dry_run: bool = False, force: bool = False,
                   now: float | None = None, inventories: list[TaggedInventory] | None = None,
                   include_foreign_expired: bool = False, discard_uncollected: bool = False) -> list[GcAction]:
    """Destroy expired ephemeral stacks (not one holding uncollected outputs, unless discarded); report
    leftovers, removing them only with ``force``."""
    actions = []
    planned = plan_stack_gc(store, engine, home, time.time() if now is None else now, inventories or [],
                            include_foreign_expired, discard_uncollected)
    for action, stack, leftover in sorted(planned, key=_removal_rank):
        if action.action == "orphan" and force:
            action = replace(action, action="remove")
        if dry_run or action.action in ("keep", "error", "orphan", "foreign", "uncollected"):
            actions.append(action)
            continue
        store.record(action.job_id, "gc", action.action, site=action.site, kind=action.kind,
                     resource=action.resource, reason=action.reason)
        try:
            if stack is not None:
                engine.destroy(stack, lambda _message: None)
                records.save_stack(store, str(stack), stack.org, stack.kind, "destroyed", outputs={})
            elif leftover is not None:
                inventory, resource = leftover
                inventory.remove(resource)
        except SquallError as exc:  # never abort halfway: this one is the operator's, the rest still goes
            action = replace(action, action="by-hand", reason=exc.message)
            store.record(action.job_id, "gc", "by-hand", site=action.site, kind=action.kind,
                         resource=action.resource, reason=exc.message)
        actions.append(action)
    return actions


def _removal_rank(planned: tuple[GcAction, StackName | None, object]) -> tuple[int, int]:
    """Stacks first (their engine knows the order), then leftovers in their cloud's dependency order."""
    action, stack, leftover = planned
    if leftover is None:
        return (0, 0)
    inventory, resource = leftover  # type: ignore[misc]
    order = inventory.removal_order
    return (1, order.index(resource.kind) if resource.kind in order else len(order))


def inventories_for(store: Store, home: Path) -> list[TaggedInventory]:
    """One tagged-resource listing per AWS region and OpenStack cloud that Squall's organisation and
    environment stacks use, and one per site whose kind lists a cloud of its own (Kubernetes)."""
    from squall.gc.clouds.aws import AwsTaggedInventory
    from squall.gc.clouds.openstack import OpenStackTaggedInventory
    from squall.sites.registration import KINDS
    from squall.infra.orgs import provider_config
    from squall.programs.stack_files import load_stack

    regions: set[str] = set()
    clouds: set[str | None] = set()
    for record in records.stacks(store):
        if record.kind not in ("org", "env") or record.state == "destroyed":
            continue
        directory = home / "envs" if record.kind == "env" else None
        stack = StackName.parse(record.name)
        try:
            settings = load_stack(record.name, directory)
            provider = provider_config(stack, directory).values
        except SquallError:
            continue  # its stack file is gone: nothing to say which cloud it was on
        if settings.org.cloud == "aws":
            regions.add(settings.org.region)
        elif settings.org.cloud == "openstack":
            clouds.add(provider.get("openstack:cloud"))
    found: list[TaggedInventory] = [AwsTaggedInventory(region) for region in sorted(regions)]
    found += [OpenStackTaggedInventory(cloud) for cloud in sorted(clouds, key=str)]
    found += [KINDS[kind].cloud_listing(name, config) for name, kind, config in store.sites()  # type: ignore[misc]
              if kind in KINDS and KINDS[kind].cloud_listing is not None]
    return found

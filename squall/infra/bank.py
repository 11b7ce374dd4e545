"""The idle VM bank: VMs kept running so a user gets one at once instead of waiting for a cold start.

The store is the truth about who holds what: ``claim`` is one atomic transition
there (idle → claimed, with owner and expiry, within the user's quota), then a
reachability check, then a refill is triggered. ``fill`` reconciles the bank's
stack: VMs idle for longer than the bank's max age and claims past their
expiry are retired (their servers destroyed), and new slots bring the idle
count back to the target, within ``max_size``. Each fill is one ``up`` of the
organisation stack with the bank's slot list; the store changes only after it
succeeded.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable

from squall.errors import InvalidInput, MissingDependency, Refused
from squall.infra import records
from squall.infra.driver import OnEvent, StackName
from squall.infra.orgs import Orgs, cluster_of
from squall.programs.design import BankSpec
from squall.programs.settings import OrgStackConfig
from squall.store import Store

Probe = Callable[[str], bool]
Refill = Callable[[StackName, str], None]


def ssh_reachable(address: str, port: int = 22, timeout: float = 3.0) -> bool:
    """Whether something accepts TCP connections on the VM's SSH port."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


class Banks:
    def __init__(self, store: Store, orgs: Orgs, probe: Probe = ssh_reachable,
                 clock: Callable[[], float] = time.time):
        self.store, self.orgs, self.probe, self.clock = store, orgs, probe, clock

    def spec(self, stack: StackName, bank: str, settings: OrgStackConfig | None = None) -> BankSpec:
        banks = {b.name: b for b in (settings or self.orgs.settings(stack)).org.banks}
        if bank not in banks:
            raise InvalidInput(f"bank {bank!r}: not a bank of {stack.org} (known: {', '.join(banks) or 'none'})")
        return banks[bank]

    def status(self, stack: StackName, bank: str, user: str) -> dict[str, Any]:
        spec = self.spec(stack, bank)
        vms = records.bank_vms(self.store, stack.org, bank)
        claimed = [vm for vm in vms if vm.state == "claimed"]
        return {
            "org": stack.org, "bank": bank, "target": spec.idle_target, "max_size": spec.max_size,
            "idle": sum(vm.state == "idle" for vm in vms), "claimed": len(claimed),
            "claims": [{"id": vm.id, "owner": vm.owner, "address": vm.address, "expires_at": vm.expires_at}
                       for vm in claimed],
            "quota": {"user": user, "used": sum(vm.owner == user for vm in claimed), "limit": spec.per_user_quota},
        }

    def fill(self, stack: StackName, bank: str, on_event: OnEvent) -> dict[str, Any]:
        settings = self.orgs.settings(stack)  # read once: the spec, what is deployed, and the overrides
        spec = self.spec(stack, bank, settings)
        self._adopt(stack, bank)
        now = self.clock()
        live = records.bank_vms(self.store, stack.org, bank)
        stale = [vm for vm in live if vm.state == "idle" and now - vm.created_at > spec.max_age_hours * 3600]
        lapsed = [vm for vm in live if vm.state == "claimed" and vm.expires_at is not None and vm.expires_at < now]
        retiring = {vm.id for vm in stale + lapsed}
        keep = [vm for vm in live if vm.id not in retiring]
        idle = sum(vm.state == "idle" for vm in keep)
        wanted = max(0, min(spec.idle_target - idle, spec.max_size - len(keep)))
        first = records.highest_slot(self.store, stack.org, bank) + 1
        new_slots = list(range(first, first + wanted))
        slots = sorted([vm.slot for vm in keep] + new_slots)
        claimed = sorted(vm.slot for vm in keep if vm.state == "claimed")
        record = records.stack(self.store, str(stack))
        deployed = None
        if record and record.state == "up":
            current = next(b for b in cluster_of(settings).banks if b.spec.name == bank)
            deployed = (list(current.slots), list(current.claimed))
        if not retiring and (slots, claimed) == deployed:
            return {"added": [], "retired": [], "idle": idle, "claimed": len(keep) - idle}
        self.store.record(None, "bank", "fill", stack=str(stack), bank=bank, add=len(new_slots),
                          retire=sorted(retiring))
        outputs = self.orgs.up(stack, on_event, {"bank_slots": {**settings.bank_slots, bank: slots},
                                                 "bank_claimed": {**settings.bank_claimed, bank: claimed}})
        addresses = {int(slot): str(address) for slot, address in (outputs.get("banks") or {}).get(bank, {}).items()}
        records.retire_bank_vms(self.store, sorted(retiring))
        records.add_bank_vms(self.store, stack.org, bank, new_slots, addresses)
        self.store.record(None, "bank", "fill-done", stack=str(stack), bank=bank, added=new_slots)
        return {"added": new_slots, "retired": sorted(retiring), "idle": idle + len(new_slots),
                "claimed": len(keep) - idle}

    def _adopt(self, stack: StackName, bank: str) -> None:
        """A bank the store has never seen (created by ``org up``): take its servers in as idle."""
        if records.highest_slot(self.store, stack.org, bank) >= 0:
            return
        record = records.stack(self.store, str(stack))
        servers = ((record.outputs if record else {}).get("banks") or {}).get(bank) or {}
        if servers:
            records.add_bank_vms(self.store, stack.org, bank, sorted(int(s) for s in servers),
                                 {int(s): str(a) for s, a in servers.items()})

    def claim(self, stack: StackName, bank: str, owner: str, refill: Refill,
              hours: float | None = None) -> records.BankVm:
        """One idle VM, at once; unreachable ones are retired and the next is tried."""
        settings = self.orgs.settings(stack)
        spec = self.spec(stack, bank, settings)
        if settings.org.cloud == "aws":
            raise Refused(f"bank {bank}: claims on AWS banks are not supported yet (the warm pool, not Squall, "
                          "picks the instance, so there is no address to hand out)",
                          hint="use an OpenStack bank, or 'squall pool scale' for AWS capacity")
        self._adopt(stack, bank)
        expires = self.clock() + (hours if hours is not None else spec.claim_hours) * 3600
        try:
            while True:
                vm = records.claim_bank_vm(self.store, stack.org, bank, owner, expires, spec.per_user_quota)
                if vm is None:
                    self._refill_possible(bank)
                    raise self._why_not(stack, bank, owner, spec)
                if vm.address and self.probe(vm.address):
                    self.store.record(None, "bank", "claim", stack=str(stack), bank=bank, vm=vm.id, owner=owner)
                    return vm
                records.retire_bank_vms(self.store, [vm.id])
                self.store.record(None, "bank", "unreachable", stack=str(stack), bank=bank, vm=vm.id)
        finally:
            refill(stack, bank)

    def _refill_possible(self, bank: str) -> None:
        """With no idle VM, "try again shortly" is only true if a refill can run here."""
        try:
            self.orgs.engine.check()
        except MissingDependency as exc:
            raise MissingDependency(f"bank {bank}: no idle VM, and no refill can run here: {exc.message}",
                                    hint=exc.hint) from None

    def _why_not(self, stack: StackName, bank: str, owner: str, spec: BankSpec) -> Refused:
        held = sum(vm.owner == owner for vm in records.bank_vms(self.store, stack.org, bank, ("claimed",)))
        if held >= spec.per_user_quota:
            return Refused(f"bank {bank}: {owner} already holds {held} VM(s), the quota is {spec.per_user_quota}",
                           hint=f"release one with 'squall bank release {stack.org} {bank} ID'")
        return Refused(f"bank {bank}: no idle VM right now (target {spec.idle_target})",
                       hint=f"a refill has been started; try again shortly, or 'squall bank fill {stack.org} {bank}'")

    def release(self, stack: StackName, bank: str, vm_id: int, owner: str, on_event: OnEvent) -> dict[str, Any]:
        """Destroy a claimed VM (it may be dirty) and refill the bank in the same update."""
        self.spec(stack, bank)
        held = {vm.id: vm for vm in records.bank_vms(self.store, stack.org, bank, ("claimed",))}
        if vm_id not in held:
            raise InvalidInput(f"vm {vm_id}: not a claimed VM of bank {bank}")
        if held[vm_id].owner != owner:
            raise Refused(f"vm {vm_id}: claimed by {held[vm_id].owner}, not {owner}")
        records.retire_bank_vms(self.store, [vm_id])
        self.store.record(None, "bank", "release", stack=str(stack), bank=bank, vm=vm_id, owner=owner)
        return self.fill(stack, bank, on_event)

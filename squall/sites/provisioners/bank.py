"""The bank provisioner: a cloud site whose jobs run on a VM claimed from the organisation's idle bank.

No stack is made for the job: ``up`` claims one idle VM (the store's atomic
claim, within the user's quota), each candidate probed through the head node
(job machines are private; the controller cannot reach them directly), and
leases it to the job; ``down`` hands it back as the bank's ``after_job``
policy says: ``release`` destroys it and refills the bank (a used VM may be
dirty), ``recycle`` returns it idle once the job's folder is gone. A claim
left by a dead controller lapses at the bank's ``claim_hours`` and the bank's
fill retires it.
"""

from __future__ import annotations

from squall.errors import Refused, SquallError
from squall.infra import records
from squall.infra.bank import Banks
from squall.infra.driver import StackName
from squall.programs.design import BankSpec
from squall.job_types import JobPlan
from squall.sites.contract import Claim, LiveResource
from squall.sites.provisioners.contract import Provisioner
from squall.store import Store

class BankProvisioner(Provisioner):
    def __init__(self, site: str, store: Store, org_stack: StackName, bank: str, banks: Banks,
                 node_user: str, node_work_root: str):
        self.site, self.store, self.org_stack, self.bank, self.banks = site, store, org_stack, bank, banks
        self.node_user, self.node_work_root = node_user, node_work_root

    def _spec(self) -> BankSpec:
        return self.banks.spec(self.org_stack, self.bank)

    def check(self, plan: JobPlan) -> None:
        self._spec()  # the bank exists in the organisation (InvalidInput naming it otherwise)
        if plan.spec.resources.nodes > 1:
            raise Refused(f"resources.nodes: site {self.site!r} runs each job on one bank VM; a task asks "
                          f"{plan.spec.resources.nodes} nodes")
        if self.banks.orgs.settings(self.org_stack).org.cloud == "aws":
            raise Refused(f"site {self.site!r}: AWS banks are warm pools; a job cannot be given one of their VMs")

    def price(self, plan: JobPlan):
        """The bank's flavour, as the organisation prices it (unpriced: None)."""
        from squall.money.site_prices import flavour_price

        return flavour_price(self.banks.orgs.settings(self.org_stack).org, self._spec().flavour)

    def node_count(self, plan: JobPlan) -> int:
        return 1

    def up(self, plan: JobPlan, claim: Claim) -> None:
        if self._vm(plan) is not None:  # a resumed controller: the job already holds its VM
            return
        job = self.store.job(plan.job_id)
        owner = (job.user if job and job.user else "squall")
        vm = self.banks.claim(self.org_stack, self.bank, owner, refill=lambda stack, bank: None)
        claim("bankvm", f"{self.org_stack.org}/{self.bank}/{vm.id}")
        self.store.record(plan.job_id, "bank", "claimed", bank=self.bank, vm=vm.id, address=vm.address)

    def _vm(self, plan: JobPlan) -> records.BankVm | None:
        ids = [int(lease.resource.rsplit("/", 1)[1]) for lease in self.store.leases(job_id=plan.job_id)
               if lease.kind == "bankvm"]
        held = {vm.id: vm for vm in records.bank_vms(self.store, self.org_stack.org, self.bank, ("claimed",))}
        return next((held[i] for i in ids if i in held), None)

    def has_nodes(self, plan: JobPlan) -> bool:
        return self._vm(plan) is not None

    def nodes(self, plan: JobPlan) -> dict:
        vm = self._vm(plan)
        if vm is None or not vm.address:
            raise SquallError(f"site {self.site!r}: job {plan.job_id} holds no VM of bank {self.bank}")
        return {"addresses": [vm.address], "job_user": self.node_user, "work_root": self.node_work_root}

    def down(self, plan: JobPlan) -> None:
        vm = self._vm(plan)
        if vm is None:
            return
        if self._spec().after_job == "recycle":
            records.recycle_bank_vm(self.store, vm.id)
            self.store.record(plan.job_id, "bank", "recycled", bank=self.bank, vm=vm.id)
            return
        self.banks.release(self.org_stack, self.bank, vm.id, vm.owner or "", lambda _message: None)
        self.store.record(plan.job_id, "bank", "released", bank=self.bank, vm=vm.id)

    def live_resources(self) -> list[LiveResource]:
        return []  # a claim lapses by itself (claim_hours) and the bank's fill retires it

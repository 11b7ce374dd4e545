"""The store's record of stacks and bank VMs (tables of migration 4).

A stack row says what Squall last did to a stack (``state``), what it must
keep passing to its program (``overrides``: pool sizes, bank slots) and when an
ephemeral one expires. A bank VM row is one slot of a bank: idle, claimed (by
whom, until when) or retired; the claim is one conditional UPDATE inside
``BEGIN IMMEDIATE``, so concurrent claims never hand out the same VM.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from squall.database import Record
from squall.store import Store


@dataclass(frozen=True)
class StackRecord:
    name: str
    org: str
    kind: str
    state: str  # creating, up, destroying, destroyed, failed
    overrides: dict[str, Any]
    outputs: dict[str, Any]
    job_id: str | None
    expires_at: float | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class BankVm:
    id: int
    org: str
    bank: str
    slot: int
    state: str  # idle, claimed, retired
    address: str | None
    owner: str | None
    claimed_at: float | None
    expires_at: float | None
    created_at: float


def stack(store: Store, name: str) -> StackRecord | None:
    rows = store.rows("SELECT * FROM stacks WHERE name = ?", (name,))
    return _stack(rows[0]) if rows else None


def stacks(store: Store, kind: str | None = None) -> list[StackRecord]:
    if kind is None:
        return [_stack(r) for r in store.rows("SELECT * FROM stacks ORDER BY name")]
    return [_stack(r) for r in store.rows("SELECT * FROM stacks WHERE kind = ? ORDER BY name", (kind,))]


def save_stack(store: Store, name: str, org: str, kind: str, state: str, *, outputs: dict | None = None,
               overrides: dict | None = None, job_id: str | None = None, expires_at: float | None = None) -> None:
    """Insert or update; fields left as None keep their stored value."""
    now = time.time()
    with store.transaction() as db:
        db.execute(
            "INSERT INTO stacks (name, org, kind, state, overrides, outputs, job_id, expires_at, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET state = excluded.state, "
            "overrides = CASE WHEN ? = 1 THEN excluded.overrides ELSE stacks.overrides END, "
            "outputs = CASE WHEN ? = 1 THEN excluded.outputs ELSE stacks.outputs END, "
            "job_id = COALESCE(excluded.job_id, stacks.job_id), "
            "expires_at = COALESCE(excluded.expires_at, stacks.expires_at), "
            "updated_at = excluded.updated_at",
            (name, org, kind, state, json.dumps(overrides or {}), json.dumps(outputs or {}), job_id, expires_at,
             now, now, overrides is not None, outputs is not None))


def bank_vms(store: Store, org: str, bank: str, states: tuple[str, ...] = ("idle", "claimed")) -> list[BankVm]:
    marks = ", ".join("?" for _ in states)
    return [_vm(r) for r in store.rows(
        f"SELECT * FROM bank_vms WHERE org = ? AND bank = ? AND state IN ({marks}) ORDER BY created_at, id",
        (org, bank, *states))]


def add_bank_vms(store: Store, org: str, bank: str, slots: list[int], addresses: dict[int, str]) -> None:
    now = time.time()
    with store.transaction() as db:
        db.executemany("INSERT INTO bank_vms (org, bank, slot, state, address, created_at) "
                       "VALUES (?, ?, ?, 'idle', ?, ?)", [(org, bank, s, addresses.get(s), now) for s in slots])


def claim_bank_vm(store: Store, org: str, bank: str, owner: str, expires_at: float,
                  quota: int) -> BankVm | None:
    """The oldest idle VM, now claimed by ``owner``; None when none is idle or ``owner`` holds ``quota``.

    One statement in a write transaction (queued behind every other writer, on any machine sharing the
    store): concurrent claims never get the same VM or exceed the quota together."""
    with store.transaction() as db:
        row = db.execute(
            "UPDATE bank_vms SET state = 'claimed', owner = :owner, claimed_at = :now, expires_at = :expires "
            "WHERE id = (SELECT id FROM bank_vms WHERE org = :org AND bank = :bank AND state = 'idle' "
            "ORDER BY created_at, id LIMIT 1) AND state = 'idle' AND (SELECT COUNT(*) FROM bank_vms "
            "WHERE org = :org AND bank = :bank AND state = 'claimed' AND owner = :owner) < :quota RETURNING *",
            {"owner": owner, "now": time.time(), "expires": expires_at, "org": org, "bank": bank,
             "quota": quota}).fetchone()
    return _vm(row) if row else None


def highest_slot(store: Store, org: str, bank: str) -> int:
    """The highest slot number the bank ever used (retired included), -1 for none: new slots go above."""
    rows = store.rows("SELECT MAX(slot) AS top FROM bank_vms WHERE org = ? AND bank = ?", (org, bank))
    return -1 if rows[0]["top"] is None else int(rows[0]["top"])


def recycle_bank_vm(store: Store, vm_id: int) -> None:
    """A claimed VM back to idle (its job's folder removed): the bank's ``after_job: recycle``."""
    with store.transaction() as db:
        db.execute("UPDATE bank_vms SET state = 'idle', owner = NULL, claimed_at = NULL, expires_at = NULL "
                   "WHERE id = ? AND state = 'claimed'", (vm_id,))


def retire_bank_vms(store: Store, ids: list[int]) -> None:
    with store.transaction() as db:
        db.executemany("UPDATE bank_vms SET state = 'retired', retired_at = ? WHERE id = ?",
                       [(time.time(), vm_id) for vm_id in ids])


def _stack(row: Record) -> StackRecord:
    return StackRecord(row["name"], row["org"], row["kind"], row["state"], json.loads(row["overrides"]),
                       json.loads(row["outputs"]), row["job_id"], row["expires_at"], row["created_at"],
                       row["updated_at"])


def _vm(row: Record) -> BankVm:
    return BankVm(row["id"], row["org"], row["bank"], row["slot"], row["state"], row["address"], row["owner"],
                  row["claimed_at"], row["expires_at"], row["created_at"])

"""What a stack's configuration holds, per kind, validated before any resource is declared.

``squall:kind`` picks the program: ``org`` (the organisation's cluster, pools and
banks) or ``job`` (one cloud job's ephemeral stack). The same models validate
the stack files in ``stacks/`` and what the CLI passes to the Automation API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from squall.programs.design import OrgSpec
from squall.errors import InvalidInput
from squall.validation import StrictModel, validate

Kind = Literal["org", "job"]
KINDS: tuple[Kind, ...] = ("org", "job")


STORE_ID = r"^([a-z0-9][a-z0-9-]{0,62})?$"


class OrgStackConfig(StrictModel):
    org: OrgSpec
    controller_public_key: str = Field(min_length=1)
    # The Squall store that drives the stack (set by the driver): in every resource's tags, so that another
    # store's gc on a shared account never takes a leftover of this one for its own.
    store: str = Field("", pattern=STORE_ID)
    # Set by `squall pool scale` and the bank's reconcile; they override the spec's desired/idle_target.
    pool_sizes: dict[str, int] = Field(default_factory=dict)
    bank_sizes: dict[str, int] = Field(default_factory=dict)
    bank_slots: dict[str, list[int]] = Field(default_factory=dict)
    bank_claimed: dict[str, list[int]] = Field(default_factory=dict)


class JobSettings(StrictModel):
    id: str = Field(min_length=1)
    created_at: int = Field(ge=0)  # set once by the driver, so a re-run never moves the expiry
    # The Squall store that made the stack: in its tags and outputs, so another store's gc leaves it alone.
    store: str = Field("", pattern=STORE_ID)
    nodes: int | None = Field(None, ge=1, le=1000)
    tasks: int = Field(1, ge=1, le=100_000)
    # One task's resources: they choose the machine (the job flavour or a GPU pool's) and, on Kubernetes,
    # each indexed pod's requests.
    cpus: float = Field(1, gt=0)
    memory_gib: float = Field(2, gt=0)
    gpus: int = Field(0, ge=0)
    walltime: int = Field(3600, ge=1, le=365 * 86400)  # seconds one task may run
    # Kubernetes only: what each indexed pod runs, and the kubeconfig context the site watches the Job in
    # (the program's provider is pinned to it, so both talk to the same cluster).
    image: str = "python:3.12-slim"
    command: list[str] = Field(default_factory=lambda: ["sleep", "1"], min_length=1)
    kube_context: str | None = Field(None, min_length=1, max_length=253)
    volume_gib: int = Field(0, ge=0, le=100_000)  # the per-job volume's size (0: no volume, nothing staged)


class PlacementSettings(StrictModel):
    """The organisation stack's outputs a job stack is placed with (filled in by the driver)."""

    vpc_id: str | None = None
    subnet_ids: list[str] = Field(default_factory=list)
    network_id: str | None = None
    intra_cidr: str = ""
    ssh_from: list[str] = Field(default_factory=list)


class JobStackConfig(StrictModel):
    org: OrgSpec
    controller_public_key: str = Field(min_length=1)
    job: JobSettings
    placement: PlacementSettings = Field(default_factory=PlacementSettings)


def load_settings(kind: str, raw: dict, source: str) -> OrgStackConfig | JobStackConfig:
    if kind not in KINDS:
        raise InvalidInput(f"{source}: squall:kind {kind!r} is not one of {', '.join(KINDS)}")
    model = OrgStackConfig if kind == "org" else JobStackConfig
    return validate(model, raw, source, f"{kind} stack config")

"""What a garbage collection did, or would do, to one thing: the record every collector returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GcAction:
    site: str
    kind: str
    resource: str
    job_id: str | None
    # remove, keep, release (lease of a resource already gone), foreign (another store's: reported), orphan
    # (a cloud leftover: reported unless --force), close (a job that never started), error (not listed),
    # by-hand (removal was tried and refused: the reason says why; the id is in ``resource``), uncollected
    # (its job's outputs were never collected: kept for ``job attach`` unless --discard-uncollected)
    action: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)

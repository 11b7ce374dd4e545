"""An SSH hop: where a site's SSH traffic goes through before its login node (a bastion, a head node)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Hop:
    host: str
    port: int
    user: str
    key: Path

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

"""Checksummed file copies, and a cache of digests keyed by file identity.

sha256 is what proves an exact copy exists at the target; computing it is the
expensive part of staging, so a digest is remembered against the file's
(size, mtime_ns, inode) and recomputed only when one of those changes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from squall.store import Store


BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def copy_with_digest(source: str | os.PathLike, target: str | os.PathLike) -> str:
    """Copy in one pass, hashing what is read; the target appears only when complete."""
    target = Path(target)
    partial = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(partial, "wb") as dst:
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        while count := src.readinto(buffer):
            digest.update(view[:count])
            dst.write(view[:count])
    os.replace(partial, target)
    return digest.hexdigest()


def identity(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def cached_sha256(store: "Store", paths: list[Path]) -> dict[Path, str]:
    """sha256 of controller-side files, recomputed only when size, mtime or inode changed."""
    cached = store.cached_digests([str(p) for p in paths])
    result: dict[Path, str] = {}
    fresh = []
    for path in paths:
        ident = identity(path.stat())
        hit = cached.get(str(path))
        if hit and hit[:3] == ident:
            result[path] = hit[3]
        else:
            result[path] = sha256_file(path)
            fresh.append((str(path), *ident, result[path]))
    if fresh:
        store.remember_digests(fresh)
    return result

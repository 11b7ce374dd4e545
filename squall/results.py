"""The results folder on the controller: checked before a job exists, written without losing outputs.

A results folder that is read-only, full or not a folder must never cost a
user their outputs. So it is checked at plan time (creatable, writable, free
space at least the inputs' size — a lower bound on what comes back), and any
write error while collecting becomes ``OutputsKept``: the runner then keeps
the job's files at the site, and ``job attach ID --results DIR`` finishes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from squall.errors import InvalidInput, OutputsKept
from squall.instants import with_instants


def check_results_root(root: Path, needed_bytes: int, option: str = "--results") -> None:
    """Raise ``InvalidInput`` naming ``root`` unless a job's results can be written under it.

    Creates nothing that is not already there (a probe file is made and removed).
    """
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInput(f"{option}: {existing} is not a folder, so {root} cannot hold results")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".squall-probe-"):
            pass
    except OSError as exc:
        raise InvalidInput(f"{option}: {root} cannot be written ({exc.strerror} at {existing})",
                           hint="choose a writable folder with --results") from None
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise InvalidInput(
            f"{option}: {existing} has {free >> 20} MiB free, less than the job's inputs ({needed_bytes >> 20} MiB)",
            hint="free some space or choose another folder with --results")


@contextmanager
def writing_results(path: Path) -> Iterator[None]:
    """Turn a failed write under the results folder into ``OutputsKept`` naming the path."""
    try:
        yield
    except OSError as exc:
        raise OutputsKept(f"cannot write results to {path}: {exc.strerror or exc}",
                          hint="free space or choose another folder, then 'squall job attach ID --results DIR'") from None


def write_report(results_dir: Path, report: dict) -> bool:
    """``job.json`` (instants as RFC 3339), complete or not at all; False when the folder cannot take it."""
    target = results_dir / "job.json"
    partial = target.with_name(".job.json.partial")
    try:
        partial.write_text(json.dumps(with_instants(report), indent=2) + "\n")
        os.replace(partial, target)
        return True
    except OSError:
        partial.unlink(missing_ok=True)
        return False


def move_collected(old_dir: Path, new_dir: Path, indexes: list[int]) -> None:
    """Bring what an earlier collect put in ``old_dir`` to ``new_dir`` (``job attach --results``).

    File by file: a collect cut short may have moved some of a task's outputs
    (they are no longer at the site), and a file already in ``new_dir`` wins.
    """
    for index in indexes:
        for rel in (f"task-{index}", f"meta/task-{index}"):
            source_root = old_dir / rel
            if not source_root.is_dir():
                continue
            for source in sorted(p for p in source_root.rglob("*") if p.is_file() or p.is_symlink()):
                if source.name.endswith(".partial"):
                    continue
                target = new_dir / rel / source.relative_to(source_root)
                if target.exists():
                    continue
                with writing_results(target):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target, follow_symlinks=False)
                try:
                    source.unlink()
                except OSError:  # the old folder is read-only: the copy there stays
                    pass


def missing_outputs(results_dir: Path, collected: dict[int, int]) -> dict[int, list[str]]:
    """Of the collected tasks (index -> files collected), those whose files are no longer all in
    ``results_dir`` — the folder removed or moved while collect ran — with what is missing: each file its
    manifest (``meta/task-<i>/manifest.json``) lists, by size (the sha256 of each was checked as it
    arrived); where the manifest itself is gone, or the site keeps none, the files counted."""
    missing: dict[int, list[str]] = {}
    for index, count in collected.items():
        folder = results_dir / f"task-{index}"
        try:
            entries = json.loads((results_dir / "meta" / f"task-{index}" / "manifest.json").read_text())["files"]
        except (OSError, ValueError, KeyError):
            present = sum(1 for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0
            if present < count:
                missing[index] = [f"task-{index}/ ({present} of {count} files)"]
            continue
        gone = []
        for entry in entries:
            try:
                if (folder / entry["path"]).stat().st_size != entry["size"]:
                    gone.append(f"task-{index}/{entry['path']}")
            except OSError:
                gone.append(f"task-{index}/{entry['path']}")
        if gone:
            missing[index] = gone
    return missing

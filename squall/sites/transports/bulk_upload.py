"""Bulk uploads through OpenSSH's own client, where this machine has ``tar`` and ``ssh``.

The missing inputs travel as one tar stream, made by the local ``tar`` from a
folder of links laid out as the job folder and piped straight (no copy through
Python) into ``ssh HOST tar --extract`` — through the site's jump host when it
has one. Packing and encryption run in C processes, one pair per host, so
several hosts are staged on every core at once, where paramiko keeps every
host's connection in this one Python process. The runtime agent checks every
file's size and sha256 afterwards, as after SFTP; a file cut short by a
dropped connection is sent again whole (SFTP resumes it: the caller sends
files already partly there that way).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from squall.errors import SquallError
from squall.sites.transports.ssh_session import SshSession

CHECKPOINT_RECORDS = 100  # tar records of 10 KiB: progress about every MiB
PROGRESS = "squall-sent"


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """OpenSSH's ``ssh`` and GNU tar (its ``--verbatim-files-from`` and checkpoints; a BSD tar, as on
    macOS, has neither): else the inputs go over SFTP."""
    if shutil.which("tar") is None or shutil.which("ssh") is None:
        return False
    try:
        said = subprocess.run(["tar", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return said.startswith("tar (GNU tar)")


def upload(ssh: SshSession, job_dir: str, files: list[tuple[Path, str]], on_bytes: Callable[[int], None]) -> None:
    """Send ``files`` (source, path in the job folder) to ``job_dir``; ``on_bytes`` hears the stream's progress.

    ``tar`` writes straight into ``ssh`` (a pipe between the two, nothing in
    this process: a hop through Python cost 0.5 s per GiB here) and says how
    far it is at each checkpoint on its standard error. A failure of the
    connection is an ``OSError`` (the caller's retry asks the agent again what
    is missing); a failure of the local ``tar`` is not.
    """
    with tempfile.TemporaryDirectory(prefix="squall-stage-") as farm, tempfile.TemporaryFile() as ssh_errors:
        for source, rel in files:
            link = Path(farm, rel)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source.resolve())
        listing = Path(farm, ".squall-files")  # a file, not a pipe: a long list never waits on tar's output
        listing.write_bytes(b"\0".join(rel.encode() for _, rel in files) + b"\0")
        tar = subprocess.Popen(["tar", "--create", "--dereference", "--file=-", f"--directory={farm}", "--null",
                                "--verbatim-files-from", f"--files-from={listing}",
                                f"--checkpoint={CHECKPOINT_RECORDS}", f"--checkpoint-action=echo={PROGRESS} %{{}}T"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            remote = subprocess.Popen(ssh.openssh_argv(["tar", "--extract", "--file=-", f"--directory={job_dir}",
                                                        "--no-same-owner"]),
                                      stdin=tar.stdout, stdout=subprocess.DEVNULL, stderr=ssh_errors)
        except BaseException:
            tar.kill()
            tar.wait()
            raise
        tar.stdout.close()  # ssh holds the only reader: a tar still writing after it ended gets EPIPE, not a wait
        try:
            tar_errors = _follow(tar.stderr, on_bytes)
            tar.wait()
            remote.wait()
        except BaseException:
            for process in (tar, remote):
                process.kill()
                process.wait()
            raise
        if remote.returncode != 0:  # first: a tar cut off by the remote side's end failed because of it
            raise OSError(f"upload to {ssh.user}@{ssh.host}:{ssh.port} through OpenSSH exited {remote.returncode}: "
                          f"{_said(ssh_errors)}")
        if tar.returncode != 0:
            raise SquallError(f"packing inputs for {ssh.host} failed: {tar_errors[-400:]}")


def _follow(stderr, on_bytes: Callable[[int], None]) -> str:
    """Read tar's standard error to its end: checkpoints become progress, the rest is returned (its errors)."""
    errors, sent = [], 0
    for line in stderr:
        text = line.decode(errors="replace")
        progress = re.search(rf"{PROGRESS} (\d+)", text)
        if progress:
            on_bytes(int(progress[1]) - sent)
            sent = int(progress[1])
        else:
            errors.append(text)
    stderr.close()
    return "".join(errors).strip()


def _said(errors) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace").strip()[-400:]

"""Bulk uploads through OpenSSH's own client, where this machine has ``tar`` and ``ssh``.

The missing inputs travel as one tar stream, made by the local ``tar`` from a
folder of links laid out as the job folder and spliced (no copy through
Python) into ``ssh HOST tar --extract`` — through the site's jump host when it
has one. Packing and encryption run in C processes, one pair per host, so
several hosts are staged on every core at once, where paramiko keeps every
host's connection in this one Python process. The runtime agent checks every
file's size and sha256 afterwards, as after SFTP; a file cut short by a
dropped connection is sent again whole (SFTP resumes it: the caller sends
files already partly there that way).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from squall.errors import SquallError
from squall.sites.ssh_session import SshSession

SPLICE = 1 << 20


def available() -> bool:
    return shutil.which("tar") is not None and shutil.which("ssh") is not None


def upload(ssh: SshSession, job_dir: str, files: list[tuple[Path, str]], on_bytes: Callable[[int], None]) -> None:
    """Send ``files`` (source, path in the job folder) to ``job_dir``; ``on_bytes`` hears the stream's progress.

    A failure of the connection is an ``OSError`` (the caller's retry asks the
    agent again what is missing); a failure of the local ``tar`` is not.
    """
    with tempfile.TemporaryDirectory(prefix="squall-stage-") as farm, \
            tempfile.TemporaryFile() as tar_errors, tempfile.TemporaryFile() as ssh_errors:
        for source, rel in files:
            link = Path(farm, rel)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source.resolve())
        listing = Path(farm, ".squall-files")  # a file, not a pipe: a long list never waits on tar's output
        listing.write_bytes(b"\0".join(rel.encode() for _, rel in files) + b"\0")
        tar = subprocess.Popen(["tar", "--create", "--dereference", "--file=-", f"--directory={farm}", "--null",
                                "--verbatim-files-from", f"--files-from={listing}"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=tar_errors)
        remote = subprocess.Popen(ssh.openssh_argv(["tar", "--extract", "--file=-", f"--directory={job_dir}",
                                                    "--no-same-owner"]),
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=ssh_errors)
        try:
            try:
                while moved := os.splice(tar.stdout.fileno(), remote.stdin.fileno(), SPLICE):
                    on_bytes(moved)
            except BrokenPipeError:
                pass  # the remote side ended early: its exit status says why
            tar.stdout.close()  # a tar still writing (the remote side gone) gets EPIPE rather than waiting forever
            remote.stdin.close()
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
            raise SquallError(f"packing inputs for {ssh.host} failed: {_said(tar_errors)}")


def _said(errors) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace").strip()[-400:]

"""The local site's sandbox: whether a payload started on this machine can be shut in, and how.

A local payload runs on the machine that holds the Squall home — its store,
tokens, uploads and every other job's folder — and, under ``squall server``,
next to the server's own process. The runtime therefore starts it under
bubblewrap (``squall_runtime.sandbox_argv``): its own mount, PID and network
namespaces, the system read-only, nothing of the home but its own task
folder. As root the payload runs as ``PAYLOAD_USER``, a system account made
for this alone. Whether that works is found out once per process, by
sandboxing ``true``; where it does not, ``LocalSandbox.fields`` is None and
``reason`` says why (the CLI warns, the server refuses API jobs there).
"""

from __future__ import annotations

import functools
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from squall.runtime import squall_runtime as runtime

PAYLOAD_USER = "squall-payload"
INSTALL_HINT = "apt-get install bubblewrap"
log = logging.getLogger("squall.sandbox")


@dataclass(frozen=True)
class LocalSandbox:
    fields: dict | None  # task.json's ``sandbox`` (None: payloads here run unsandboxed)
    reason: str  # what shuts payloads in, or why nothing can

    def covers(self, work_root: Path) -> "LocalSandbox":
        """This sandbox for job folders under ``work_root``: none where they lie inside the system folders
        the sandbox shows read-only (the home would then be visible to the payload)."""
        if self.fields is None:
            return self
        root = work_root.resolve()
        shown = [folder for folder in runtime.SANDBOX_SYSTEM if root.is_relative_to(Path(folder).resolve())]
        if shown:
            return LocalSandbox(None, f"the work root {root} lies in {shown[0]}, which every sandbox shows")
        return self


@functools.cache
def local_sandbox() -> LocalSandbox:
    """Probed once: bubblewrap found, the payload account there (made as root), ``true`` run inside."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return LocalSandbox(None, f"bubblewrap (bwrap) is not installed ({INSTALL_HINT})")
    fields: dict = {"bwrap": bwrap}
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return LocalSandbox(None, "setpriv (util-linux) is not installed: as root the payload needs it to "
                                      "drop to an unprivileged account")
        try:
            account = payload_account()
        except OSError as exc:
            return LocalSandbox(None, f"cannot make the payload account {PAYLOAD_USER!r}: {exc}")
        fields.update(setpriv=setpriv, uid=account.pw_uid, gid=account.pw_gid)
    failure = _probe(fields)
    if failure:
        return LocalSandbox(None, f"bubblewrap cannot make a sandbox here: {failure}")
    who = f" as {PAYLOAD_USER}" if "uid" in fields else ""
    return LocalSandbox(fields, f"bubblewrap sandbox{who}: own mount, PID and network namespaces")


def payload_account() -> pwd.struct_passwd:
    """The unprivileged system account payloads run as when Squall runs as root; made when missing."""
    try:
        return pwd.getpwnam(PAYLOAD_USER)
    except KeyError:
        pass
    made = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                           "--shell", "/usr/sbin/nologin", "--comment", "Squall payloads (sandboxed)", PAYLOAD_USER],
                          capture_output=True, text=True)
    if made.returncode not in (0, 9):  # 9: made meanwhile by another process
        raise OSError(made.stderr.strip() or f"useradd exited {made.returncode}")
    return pwd.getpwnam(PAYLOAD_USER)


def _probe(fields: dict) -> str:
    """'' when ``true`` runs in the sandbox over a throw-away task folder, else what went wrong."""
    with tempfile.TemporaryDirectory(prefix="squall-sandbox-") as folder:
        task = os.path.join(folder, "task-0")
        for name in ("out", "tmp"):
            os.makedirs(os.path.join(task, name))
        if "uid" in fields:
            runtime.hand_over(task, fields["uid"], fields["gid"])
        try:
            done = subprocess.run(runtime.sandbox_argv(fields, task, ["true"]), capture_output=True, text=True,
                                  timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    return "" if done.returncode == 0 else (done.stderr.strip()[-300:] or f"exit {done.returncode}")


def warn_unsandboxed(sandbox: LocalSandbox) -> None:
    """Say plainly, once per process, what a local payload can reach when nothing shuts it in."""
    if sandbox.fields is None and not getattr(warn_unsandboxed, "said", False):
        warn_unsandboxed.said = True  # type: ignore[attr-defined]
        log.warning("the local site runs payloads without a sandbox (%s): a payload can read and change "
                    "everything this account can — the Squall home, its store and tokens, other jobs' folders. "
                    "Run only payloads you trust here, or %s.", sandbox.reason, INSTALL_HINT)

"""Running Squall's roles through ansible-runner, with typed results.

Each run gets a private_data_dir in a temporary folder; Ansible's home, its
local temp and its SSH control sockets live inside it, the control masters are
closed at the end (no ControlPersist connection lingers) and the folder is
removed. Private keys are referenced by path, never copied.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from squall.errors import MissingDependency, SiteUnreachable, SquallError
from squall.hops import Hop
from squall.project import project_dir

CONNECT_TIMEOUT = 10  # seconds for SSH to connect, so an unreachable site fails fast
AUTH_MARKERS = ("Permission denied", "publickey", "Authentication failed", "no such identity")


@dataclass(frozen=True)
class TaskOutcome:
    host: str
    role: str
    task: str
    status: str  # ok, changed, failed, skipped, unreachable
    message: str = ""


@dataclass
class PlaybookResult:
    status: str  # successful or failed
    rc: int
    tasks: list[TaskOutcome] = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # data published with set_stats

    @property
    def changed(self) -> int:
        return sum(t.status == "changed" for t in self.tasks)

    @property
    def failed(self) -> list[TaskOutcome]:
        return [t for t in self.tasks if t.status in ("failed", "unreachable")]


class PlaybookFailed(SquallError):
    """A task failed; carries the task's name and message, and the partial result."""

    def __init__(self, outcome: TaskOutcome, result: PlaybookResult):
        super().__init__(f"{outcome.role + ': ' if outcome.role else ''}{outcome.task}: {outcome.message}")
        self.outcome = outcome
        self.result = result


EventSink = Callable[[TaskOutcome], None]
OPERATOR_HINT = "pip install 'squall[operator]' (from a clone: pip install -e '.[operator]')"


def run_roles(
    roles: list[str],
    inventories: list[Path],
    known_hosts: Path,
    extravars: dict | None = None,
    on_task: EventSink | None = None,
    timeout: int = 1800,
    jump: Hop | None = None,
) -> PlaybookResult:
    """Apply ``roles`` to the site's machines (its ``login`` host, or its ``nodes``); raise on failure."""
    try:
        import ansible_runner
    except ImportError:
        raise MissingDependency("ansible-runner is not installed: enrolling sites needs Squall's operator extra",
                                hint=OPERATOR_HINT) from None
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "ansible-playbook").exists() and not shutil.which("ansible-playbook"):
        raise MissingDependency("ansible-playbook is not on PATH: enrolling sites needs Squall's operator extra",
                                hint=OPERATOR_HINT)
    play = [{"name": "Squall", "hosts": "login:nodes", "gather_facts": False, "roles": roles}]
    private = Path(tempfile.mkdtemp(prefix="squall-ansible-"))
    control = private / "cp"
    control.mkdir()
    result = PlaybookResult(status="failed", rc=-1)

    def handle(event: dict) -> bool:
        outcome = _outcome(event)
        if outcome is not None:
            result.tasks.append(outcome)
            if on_task:
                on_task(outcome)
        if event.get("event") == "playbook_on_stats":
            result.stats = dict(event.get("event_data", {}).get("artifact_data") or {})
        return False  # keep no event files on disk

    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            playbook=play,
            inventory=[str(p) for p in inventories],
            roles_path=str(project_dir() / "roles"),
            extravars=extravars or {},
            envvars=_environment(private, control, known_hosts, bin_dir, jump),
            event_handler=handle,
            quiet=True,
            timeout=timeout,
        )
        result.status, result.rc = runner.status, runner.rc
    finally:
        _close_control_masters(control)
        shutil.rmtree(private, ignore_errors=True)
    if result.failed:
        first = result.failed[0]
        if first.status == "unreachable":
            raise _unreachable(first)
        raise PlaybookFailed(first, result)
    if result.status != "successful":
        raise SquallError(f"ansible-playbook ended with status {result.status} (rc {result.rc})")
    return result


def _environment(private: Path, control: Path, known_hosts: Path, bin_dir: Path, jump: Hop | None = None) -> dict:
    checking = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=accept-new -o BatchMode=yes"
    ssh_args = (
        f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={control}/%C {checking} "
        f"-o ConnectTimeout={CONNECT_TIMEOUT} -o IdentitiesOnly=yes"
    )
    if jump is not None:  # the same hop as Squall's own SSH, its host key pinned in the same file
        proxy = (f"ssh -i {shlex.quote(str(jump.key))} -p {jump.port} {checking} -o IdentitiesOnly=yes "
                 f"-o ConnectTimeout={CONNECT_TIMEOUT} -W %h:%p {jump.user}@{jump.host}")
        ssh_args += " -o " + shlex.quote(f"ProxyCommand={proxy}")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_HOME": str(private / "home"),
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_TIMEOUT": str(CONNECT_TIMEOUT),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PIPELINING": "True",
    }


def _outcome(event: dict) -> TaskOutcome | None:
    kind = event.get("event", "")
    status = {
        "runner_on_ok": "ok",
        "runner_on_failed": "failed",
        "runner_on_unreachable": "unreachable",
        "runner_on_skipped": "skipped",
    }.get(kind)
    if status is None:
        return None
    data = event.get("event_data", {})
    res = data.get("res") or {}
    if status == "ok" and res.get("changed"):
        status = "changed"
    if status == "failed" and data.get("ignore_errors"):
        status = "ok"
    message = str(res.get("msg") or res.get("stderr") or "").strip()
    return TaskOutcome(
        host=data.get("host", ""),
        role=data.get("role", ""),
        task=data.get("task", ""),
        status=status,
        message=message,
    )


def _unreachable(outcome: TaskOutcome) -> SiteUnreachable:
    if any(marker in outcome.message for marker in AUTH_MARKERS):
        return SiteUnreachable(
            f"authentication failed on {outcome.host}: {outcome.message}",
            hint="check ansible_user and ansible_ssh_private_key_file in the site inventory",
        )
    return SiteUnreachable(
        f"{outcome.host} is unreachable: {outcome.message}",
        hint="check ansible_host/ansible_port, and that you can reach the login node over SSH",
    )


def _close_control_masters(control: Path) -> None:
    for socket_path in control.iterdir() if control.exists() else []:
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "squall-control"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False,
        )

"""``job run`` on a real terminal (tmux): live bars, then Ctrl-C — the bars are closed and the summary
prints below them, on its own lines; a job without inputs shows no staging bar."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt install tmux)")

BAR = "━"


class Pane:
    def __init__(self, command: str, env: dict):
        self.socket = f"squall-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self.tmux("new-session", "-d", "-x", "120", "-y", "50",
                  f"env {exports} {command}; echo EXITED=$?; sleep 600")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=True).stdout

    def screen(self) -> list[str]:
        return [line.rstrip() for line in self.tmux("capture-pane", "-p", "-J", "-S", "-200").splitlines()]

    def wait_for(self, text: str, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen()
            if any(text in line for line in lines):
                return lines
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared:\n" + "\n".join(self.screen()))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def pane(squall):
    opened = []

    def open_pane(*args: str) -> Pane:
        opened.append(Pane(" ".join(shlex.quote(a) for a in squall.argv(*args)),
                           {"SQUALL_HOME": str(squall.home), "TERM": "xterm-256color"}))
        return opened[-1]
    yield open_pane
    for each in opened:
        each.close()


def test_ctrl_c_closes_the_bars_and_the_summary_prints_below_them(pane, make_spec):
    spec = make_spec({"name": "slow", "split": 2, "command": "sleep 60"},
                     files={"inputs/a.txt": "x" * 4096, "inputs/b.txt": "y" * 4096})
    term = pane("job", "run", str(spec))
    term.wait_for("2 running")  # the live tasks bar is up
    term.tmux("send-keys", "C-c")
    lines = term.wait_for("EXITED=")
    assert "EXITED=130" in lines
    summary = next(i for i, line in enumerate(lines) if line.startswith("job ") and "(slow) on local:" in line)
    bars = [i for i, line in enumerate(lines) if BAR in line]
    assert bars and max(bars) < summary, "\n".join(lines)  # nothing of the bars is drawn after the summary
    assert lines[summary].endswith(("cancelled", "failed")), lines[summary]
    table = lines.index(next(line for line in lines if line.startswith("TASK ")))
    assert table > summary and all(BAR not in line for line in lines[summary:])


def test_no_staging_bar_for_a_job_without_inputs(pane, make_spec):
    term = pane("job", "run", str(make_spec({"name": "bare", "command": "sleep 1"})))
    lines = term.wait_for("EXITED=")
    assert "EXITED=0" in lines and any(line.startswith("tasks") for line in lines), "\n".join(lines)
    assert not any(line.startswith("staging") for line in lines), "\n".join(lines)


def test_phase_lines_carry_no_source_paths(pane, make_spec):
    term = pane("job", "run", str(make_spec({"name": "bare", "command": "true"})))
    lines = term.wait_for("EXITED=")
    assert any(" launch" in line for line in lines) and not any(".py:" in line for line in lines), "\n".join(lines)

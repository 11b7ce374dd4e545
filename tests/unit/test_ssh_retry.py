"""SSH retries: wrong addresses fail at once naming host and port; transient errors are retried and shown."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from squall.errors import SiteUnreachable
from squall.sites.transports.ssh_session import SshSession


@pytest.fixture
def session_to(tmp_path):
    key = tmp_path / "key"
    key.write_text("not used before a connection\n")

    def make(host: str, port: int = 22) -> SshSession:
        return SshSession(host, port, "someone", key, tmp_path / "known_hosts")
    return make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "no-such-host.invalid"])
def test_refused_or_unresolvable_fails_fast_naming_host_and_port(session_to, host, caplog):
    port = free_port()
    started = time.monotonic()
    with pytest.raises(SiteUnreachable, match=f"someone@{host}:{port} unreachable") as failed:
        session_to(host, port).run(["true"])
    assert time.monotonic() - started < 10
    assert "ansible_host" in failed.value.hint
    assert not [r for r in caplog.records if "retry" in r.getMessage()]  # no retry of a wrong address


def test_transient_errors_are_retried_each_retry_logged(session_to, caplog):
    session = session_to("login.example")
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise EOFError("connection dropped")
        return "done"

    with caplog.at_level(logging.WARNING, logger="squall.ssh"):
        assert session.retrying(flaky, "squall-runtime poll") == "done"
    lines = [r.getMessage() for r in caplog.records if r.name == "squall.ssh"]
    assert lines == [f"squall-runtime poll on someone@login.example:22 failed (connection dropped); "
                     f"retry {n} of 7 in {wait} s" for n, wait in ((1, "0.5"), (2, "1.0"))]


def test_one_attempt_when_asked_and_the_last_error_is_named(session_to):
    session = session_to("login.example")

    def dropped() -> str:
        raise EOFError("connection dropped")

    with pytest.raises(SiteUnreachable, match="login.example:22 unreachable: connection dropped"):
        session.retrying(dropped, "poll", retry=False)


def test_squall_warnings_reach_stderr_by_default_and_not_with_q(capsys):
    from squall.cli.global_options import configure_logging

    squall_log = logging.getLogger("squall")
    saved = (squall_log.level, list(squall_log.handlers), squall_log.propagate)
    try:
        for quiet, shown in ((False, True), (True, False)):
            squall_log.handlers.clear()
            configure_logging(0, False, quiet)
            logging.getLogger("squall.ssh").warning("retry 1 of 7")
            assert ("squall: retry 1 of 7" in capsys.readouterr().err) is shown
    finally:
        squall_log.setLevel(saved[0])
        squall_log.handlers[:] = saved[1]
        squall_log.propagate = saved[2]

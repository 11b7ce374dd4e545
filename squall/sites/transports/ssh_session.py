"""One reused SSH connection to a site's login node, with retry and backoff, optionally through a jump host.

Every remote command is a list of words joined with ``shlex.quote``: no value
ever reaches the remote shell unquoted. Files move over SFTP, which involves
no shell at all. Transient failures (a dropped connection, sshd restarting)
are retried with exponential backoff on a fresh connection; an authentication
failure is not retried. Every remote command Squall runs is idempotent (the
agent's calls, scancel, rm), so running one again after a drop is safe.

Through a jump host, one OpenSSH master connection to the jump host carries
each host's connection as a ``direct-tcpip`` channel (``JumpConnection``); the
host key of every hop is pinned in the same ``known_hosts``, and an error names
the hop that failed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

from squall.errors import Interrupted, InvalidInput, SiteUnreachable, SquallError
from squall.hops import Hop

T = TypeVar("T")
ATTEMPTS = 8  # waits of 0.5, 1, 2, 4, 8, 8, 8 s between them: ~31 s in all
FIRST_WAIT, MAX_WAIT = 0.5, 8
CONNECT_TIMEOUT = 10
SFTP_STALL = 60  # seconds without an SFTP reply before the connection counts as dropped
MASTER_PERSIST = 30  # seconds a jump host's master connection stays after its last channel


log = logging.getLogger("squall.ssh")


class _Transient(Exception):
    """Raised from the error a fresh connection may cure (its ``__cause__``): the one thing retried."""


class HopUnreachable(OSError):
    """The jump host, or the way from it to the login node, failed (a transient error, retried)."""


class SshSession:
    def __init__(self, host: str, port: int, user: str, key: Path, known_hosts: Path,
                 on_retry: Callable[[str, Exception], None] | None = None, jump: "JumpConnection | None" = None):
        self.host, self.port, self.user, self.key = host, port, user, key
        self.known_hosts = known_hosts
        self.on_retry = on_retry
        self.jump = jump  # shared by every session of the site
        self._connection = None
        self._sftp = None
        self._ever_connected = False  # a refusal before the first connection is a wrong address, not a blip
        self._connecting = threading.Lock()
        self._agent = None  # the long-lived agent's channel (``call``)
        self._agent_buffer = bytearray()
        self._calling = threading.Lock()
        self.commands = 0  # remote commands run, for tests and benchmarks

    # connection ---------------------------------------------------------

    def _connect(self):
        with self._connecting:  # threads of one controller (uploads, questions asked ahead) share one connection
            return self._connect_once()

    def _connect_once(self):
        import fabric
        import paramiko

        if self._connection is not None and self._connection.is_connected:
            return self._connection
        self.close()
        connect_kwargs = {"key_filename": str(self.key), "look_for_keys": False, "allow_agent": False,
                          "transport_factory": _gcm_first_transport}
        if self.jump is not None:
            connect_kwargs["sock"] = self.jump.channel_to(self.host, self.port)
        connection = fabric.Connection(self.host, user=self.user, port=self.port, connect_timeout=CONNECT_TIMEOUT,
                                       connect_kwargs=connect_kwargs)
        client = connection.client
        self.known_hosts.touch(mode=0o600, exist_ok=True)
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # trust on first use, then pinned
        try:
            connection.open()
        except (paramiko.AuthenticationException, paramiko.BadHostKeyException):
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if self.jump is None:
                raise
            connection.close()  # ends the channel's ssh -W process
            raise HopUnreachable(f"from jump host {self.jump.hop}, {self.host}:{self.port} unreachable: {exc}") \
                from None
        client.save_host_keys(str(self.known_hosts))
        self._connection = connection
        self._ever_connected = True
        return connection

    def close(self) -> None:
        for thing in (self._agent, self._sftp, self._connection):
            try:
                if thing is not None:
                    thing.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self._agent, self._sftp, self._connection = None, None, None
        self._agent_buffer = bytearray()

    def abandon(self) -> None:
        """Drop a session that a signal cut mid-call: only its socket is shut. Closing it the usual way takes
        paramiko's channel locks, which the cut call may have left held: a controller hung there for good
        (once in CI, SIGINT during ``up``). The transport's own thread ends on the shut socket; the next
        call connects anew."""
        connection = self._connection
        self._agent, self._sftp, self._connection = None, None, None
        self._agent_buffer = bytearray()
        transport = connection.client.get_transport() if connection is not None else None
        if transport is not None:
            try:
                transport.sock.close()
            except (OSError, EOFError):
                pass

    def transport(self):
        return self._connect().client.get_transport()

    def host_key_line(self) -> str:
        """This host's key as a ``known_hosts`` line (the key pinned when Squall connected)."""
        key = self.transport().get_remote_server_key()
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{name} {key.get_name()} {key.get_base64()}"

    def openssh_argv(self, remote: list[str]) -> list[str]:
        """OpenSSH's own client running ``remote`` (its words quoted) on this host as this session does: the
        same account and key, the host key already pinned in the same ``known_hosts``, the same jump host."""
        argv = ["ssh", "-i", str(self.key), "-p", str(self.port), "-l", self.user, "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "LogLevel=ERROR", "-o", "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com",
                "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"]  # a silent host: gone in 30 s
        if self.jump is not None:
            argv += ["-o", f"ProxyCommand={self.jump.proxy_command()}"]
        return [*argv, "--", self.host, " ".join(shlex.quote(word) for word in remote)]

    def sftp(self):
        """The connection's SFTP session. A reply that stalls for ``SFTP_STALL`` seconds (paramiko's prefetch
        can wait for one forever, and a transfer runs with signals deferred) is a dropped connection: retried
        on a fresh one."""
        if self._sftp is None:
            self._sftp = self._connect().sftp()
            self._sftp.get_channel().settimeout(SFTP_STALL)
        return self._sftp

    def retrying(self, action: Callable[[], T], what: str, retry: bool = True) -> T:
        """Run ``action`` (which uses this session), reconnecting on transient failures (once only if not
        ``retry``); each retry is logged on ``squall.ssh`` (shown on stderr) and passed to ``on_retry``."""
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        self.check_key()
        attempts = Retrying(stop=stop_after_attempt(ATTEMPTS if retry else 1),
                            wait=wait_exponential(multiplier=FIRST_WAIT, max=MAX_WAIT),
                            retry=retry_if_exception_type(_Transient), before_sleep=self._announce(what),
                            reraise=True)
        try:
            return attempts(self._once, action, what)
        except _Transient as transient:
            last = transient.__cause__
        if isinstance(last, HopUnreachable):
            raise SiteUnreachable(f"{what}: {last}", hint="is the jump host up, and can it reach the login node?")
        raise SiteUnreachable(f"{what}: {self.user}@{self.host}:{self.port} unreachable: {last}",
                              hint="is the login node up and reachable over SSH?")

    def _once(self, action: Callable[[], T], what: str) -> T:
        try:
            return action()
        except BaseException as exc:
            if not isinstance(exc, Exception):  # KeyboardInterrupt and the like: the session may be mid-packet
                self.abandon()
                raise
            if isinstance(exc, SquallError):  # Interrupted, or a decision of the action's own
                if isinstance(exc, Interrupted):
                    self.abandon()
                raise
            raise _Transient() from self._transient(exc, what)

    def _announce(self, what: str) -> Callable:
        def before_sleep(state) -> None:
            error = state.outcome.exception().__cause__
            log.warning("%s on %s@%s:%s failed (%s); retry %d of %d in %.1f s", what, self.user, self.host,
                        self.port, error, state.attempt_number, ATTEMPTS - 1, state.next_action.sleep)
            if self.on_retry:
                self.on_retry(what, error)
        return before_sleep

    def _transient(self, exc: Exception, what: str) -> Exception:
        """Return ``exc`` when a fresh connection may help (the session is closed); raise when it cannot."""
        import paramiko

        if isinstance(exc, paramiko.AuthenticationException):
            raise SiteUnreachable(
                f"authentication failed for {self.user}@{self.host}:{self.port}: {exc}",
                hint="check the site inventory's ansible_user and ansible_ssh_private_key_file",
            ) from None
        if isinstance(exc, paramiko.BadHostKeyException):
            raise SiteUnreachable(f"{self.host}'s host key changed: {exc}", hint=f"see {self.known_hosts}") from None
        if _refused(exc) and not self._ever_connected:
            self.close()
            raise SiteUnreachable(f"{self.user}@{self.host}:{self.port} unreachable: {exc}",
                                  hint="check the inventory's ansible_host and ansible_port") from None
        connected = self._connection is not None and self._connection.is_connected
        if isinstance(exc, (FileNotFoundError, PermissionError)) and connected:
            raise exc  # a real answer from the site, not a dropped connection
        transport = (OSError, EOFError, socket.timeout, paramiko.SSHException, paramiko.SFTPError)
        if not isinstance(exc, transport):
            if type(exc).__module__.split(".")[0] != "paramiko":
                raise exc  # the action's own failure (a digest that differs, a bug): not the connection's
            self.close()  # any other paramiko failure is the site's, named, never "internal"
            raise SiteUnreachable(f"{what}: {self.user}@{self.host}:{self.port}: {exc!r}") from None
        self.close()  # a broken SFTP session or connection is never reused
        return exc

    def check_key(self) -> None:
        check_private_key(self.key)
        if self.jump is not None:
            check_private_key(self.jump.hop.key, "squall_jump_host.private_key_file")

    # commands -----------------------------------------------------------

    def run(self, argv: list[str], stdin: bytes | None = None, timeout: float = 300, check: bool = True,
            retry: bool = True) -> str:
        """Run one remote command (its words quoted); return stdout. ``retry=False``: one attempt, for callers
        that decide themselves what a silent host means (a poll)."""
        command = " ".join(shlex.quote(word) for word in argv)

        def attempt() -> tuple[int, str, str]:
            transport = self._connect().client.get_transport()
            channel = transport.open_session(timeout=CONNECT_TIMEOUT)
            channel.settimeout(timeout)
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin)
            channel.shutdown_write()
            out, err = bytearray(), bytearray()
            while True:
                if channel.recv_ready():
                    out += channel.recv(1 << 16)
                elif channel.recv_stderr_ready():
                    err += channel.recv_stderr(1 << 16)
                elif (channel.eof_received or channel.closed) and not channel.recv_ready() \
                        and not channel.recv_stderr_ready():
                    break  # after the end of its output, not at its exit status (which may come first)
                else:
                    time.sleep(0.002)
            status = channel.recv_exit_status()
            channel.close()
            if status == -1:  # the connection died before the command ended: try again
                raise EOFError(f"connection lost while running {argv[0]}")
            return status, out.decode(errors="replace"), err.decode(errors="replace")

        self.commands += 1
        status, out, err = self.retrying(attempt, argv[0], retry)
        if check and status != 0:
            raise RemoteCommandFailed(argv, status, err.strip() or out.strip())
        return out


    def call(self, server: list[str], args: list[str], stdin: bytes | None = None, retry: bool = True,
             timeout: float = 300.0) -> str:
        """One request to the long-lived agent ``server`` (started once per connection, kept open): no new
        SSH session nor interpreter per call. Requests and answers are lines of JSON; a call cut short
        (no answer within ``timeout`` seconds included) closes the connection, so the next one starts from a
        fresh agent."""
        request = json.dumps({"args": args, "stdin": base64.b64encode(stdin).decode() if stdin else None})

        def attempt() -> dict:
            with self._calling:
                if self._agent is None or self._agent.closed:
                    self._agent_buffer = bytearray()
                    self._agent = self._connect().client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
                    self._agent.exec_command(" ".join(shlex.quote(word) for word in server))
                self._agent.settimeout(timeout)
                self._agent.sendall(request.encode() + b"\n")
                while b"\n" not in self._agent_buffer:
                    chunk = self._agent.recv(1 << 16)
                    if not chunk:
                        said = self._agent.recv_stderr(4096).decode(errors="replace").strip()
                        raise EOFError(f"the agent on {self.host} ended{': ' + said if said else ''}")
                    self._agent_buffer += chunk
                line, _, rest = bytes(self._agent_buffer).partition(b"\n")
                self._agent_buffer = bytearray(rest)
                return json.loads(line)

        self.commands += 1
        answer = self.retrying(attempt, args[0], retry)
        if answer["code"] != 0:
            raise RemoteCommandFailed(args, answer["code"], answer["err"].strip() or answer["out"].strip())
        return answer["out"]


class JumpConnection:
    """The jump host, through one OpenSSH master connection shared by every host behind it.

    Each host's SSH connection travels in a ``direct-tcpip`` channel of that
    master (``ssh -W`` as a multiplexing client): the outer layer runs in
    OpenSSH's own process, which more than doubles throughput over a paramiko
    connection nested in another. The master is started (and its errors read)
    before the first channel, lingers ``MASTER_PERSIST`` seconds after the last
    one, and is shared with this user's other controllers. The jump host's key
    is pinned in the same ``known_hosts`` as every host's.
    """

    def __init__(self, hop: Hop, known_hosts: Path):
        self.hop = hop
        self.known_hosts = known_hosts
        self._lock = threading.Lock()
        self._ever_connected = False

    def _options(self) -> list[str]:
        control = Path(tempfile.gettempdir()) / f"squall-ssh-{os.getuid()}"
        control.mkdir(mode=0o700, exist_ok=True)
        return ["-i", str(self.hop.key), "-p", str(self.hop.port), "-l", self.hop.user,
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=accept-new",
                "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=10", "-o", f"ControlPath={control}/%C"]

    def channel_to(self, host: str, port: int):
        import paramiko

        with self._lock:
            self._ensure_master()
        argv = ["ssh", *self._options(), "-o", "ControlMaster=no", "-W", f"{host}:{port}", self.hop.host]
        return paramiko.ProxyCommand(shlex.join(argv))

    def proxy_command(self) -> str:
        """An OpenSSH ``ProxyCommand`` through this jump host's master (``%h:%p``: the host behind it; the
        control path's own ``%C`` escaped for the client that runs it)."""
        with self._lock:
            self._ensure_master()
        options = [word.replace("%", "%%") for word in self._options()]
        return shlex.join(["ssh", *options, "-o", "ControlMaster=no", "-W", "%h:%p", self.hop.host])

    def _ensure_master(self) -> None:
        options = self._options()
        if subprocess.run(["ssh", *options, "-O", "check", self.hop.host], capture_output=True).returncode == 0:
            return
        self.known_hosts.touch(mode=0o600, exist_ok=True)
        with tempfile.TemporaryFile() as errors:  # not a pipe: the master keeps its stderr after ``-f``
            started = subprocess.run(["ssh", *options, "-o", "ControlMaster=yes",
                                      "-o", f"ControlPersist={MASTER_PERSIST}", "-f", "-N", self.hop.host],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
        if started.returncode == 0:
            self._ever_connected = True
            return
        self._raise_for(message[-1] if message else f"ssh exited {started.returncode}")

    def _raise_for(self, message: str) -> None:
        hop = self.hop
        if "Permission denied" in message:
            raise SiteUnreachable(f"jump host {hop}: authentication failed: {message}",
                                  hint="check squall_jump_host's user and private_key_file")
        if "IDENTIFICATION HAS CHANGED" in message or "Host key verification failed" in message:
            raise SiteUnreachable(f"jump host {hop}: host key changed: {message}", hint=f"see {self.known_hosts}")
        refused = any(text in message for text in ("Connection refused", "Could not resolve", "not known"))
        if refused and not self._ever_connected:
            raise SiteUnreachable(f"jump host {hop} unreachable: {message}", hint="check squall_jump_host's host and port")
        raise HopUnreachable(f"jump host {hop} unreachable: {message}")


def _refused(exc: Exception) -> bool:
    """A refused connection or a name that does not resolve: retrying the same address will not help."""
    import paramiko

    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return all(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == 111
                   for e in exc.errors.values())
    return isinstance(exc, (ConnectionRefusedError, socket.gaierror))


def check_private_key(path: Path, field: str = "ansible_ssh_private_key_file") -> None:
    """A missing or unreadable private key is the inventory's fault: say so at once, not after retries."""
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise InvalidInput(f"{field}: {path}: {exc.strerror}",
                           hint="point the site inventory at a readable private key") from None


class RemoteCommandFailed(SquallError):
    def __init__(self, argv: list[str], status: int, message: str):
        super().__init__(f"remote command {' '.join(shlex.quote(w) for w in argv)} exited {status}: {message}")
        self.status = status
        self.stderr = message


GCM = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _gcm_first_transport(*args, **kwargs):
    """A paramiko transport that prefers AES-GCM (about twice the throughput of
    its default AES-CTR + HMAC here); servers without GCM still get CTR."""
    import paramiko

    transport = paramiko.Transport(*args, **kwargs)
    options = transport.get_security_options()
    options.ciphers = GCM + tuple(c for c in options.ciphers if c not in GCM)
    return transport

"""``squall server`` as a real process on a real port, with a token made by ``squall token create``."""

from __future__ import annotations

import json
import signal
import socket
import time

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(server, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/me")
            return
        except httpx.ConnectError:
            assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
            time.sleep(0.2)


def test_a_token_is_shown_once_and_signs_in_to_the_running_server_until_revoked(squall):
    code, made = squall.json("token", "create", "--user", "ana", "--org", "acme", "--role", "admin")
    assert code == 0 and made["token"].startswith("sq_")
    listed = squall.run("token", "list", "--output", "json")
    assert made["token"] not in listed.stdout and json.loads(listed.stdout)[0]["id"] == made["id"]
    port = free_port()
    server = squall.start("server", "--port", str(port), "--local-site")
    try:
        wait_until_up(server, port)
        url = f"http://127.0.0.1:{port}/api/v1/me"
        answer = httpx.get(url, headers={"Authorization": f"Bearer {made['token']}"})
        assert answer.status_code == 200
        assert answer.json() == {"success": True, "error_msgs": [],
                                 "data": {"user": "ana", "org": "acme", "role": "admin", "application": None}}
        assert squall.run("token", "revoke", made["id"]).returncode == 0
        again = httpx.get(url, headers={"Authorization": f"Bearer {made['token']}"})
        assert again.status_code == 401 and again.json()["success"] is False
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert made["token"] not in server.stderr.read()  # never logged


def failed_sign_ins_from_two_forwarded_addresses(port: int) -> int:
    """``FAILURES`` failed sign-ins claiming one forwarded address, then one claiming another: its status."""
    from squall.server.auth import FAILURES

    url, guessed = f"http://127.0.0.1:{port}/api/v1/me", "sq_0123456789ab_" + "A" * 43
    for _ in range(FAILURES):
        httpx.get(url, headers={"Authorization": f"Bearer {guessed}", "X-Forwarded-For": "203.0.113.9"})
    return httpx.get(url, headers={"Authorization": f"Bearer {guessed}",
                                   "X-Forwarded-For": "203.0.113.10"}).status_code


def test_forwarded_addresses_are_believed_only_from_the_listed_proxies(squall):
    for extra, expected in (((), 429), (("--forwarded-allow-ips", "127.0.0.1"), 401)):
        port = free_port()
        server = squall.start("server", "--port", str(port), "--take-over-every", "0", *extra)
        try:
            wait_until_up(server, port)
            assert failed_sign_ins_from_two_forwarded_addresses(port) == expected, extra
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def test_connections_that_never_send_a_whole_request_are_closed(squall):
    """100 slowloris clients (a header byte now and then) and 20 silent ones are all closed once the head
    timeout passes, while a real client is answered throughout."""
    port = free_port()
    server = squall.start("server", "--port", str(port), "--take-over-every", "0", "--header-timeout", "2")
    slow = []
    try:
        wait_until_up(server, port)
        for n in range(120):
            connection = socket.create_connection(("127.0.0.1", port))
            connection.settimeout(10)
            if n < 100:
                connection.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
            slow.append(connection)
        for _ in range(4):  # a byte a second: each resets any idle timer, never the head's deadline
            time.sleep(1)
            for connection in slow[:100]:
                try:
                    connection.sendall(b"X")
                except OSError:
                    pass
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/me").status_code == 401
        closed = 0
        for connection in slow:
            connection.settimeout(0.5)  # closed already: recv answers at once
            try:
                closed += connection.recv(1024) == b""
            except OSError:  # reset by the server
                closed += 1
        assert closed == len(slow)
    finally:
        for connection in slow:
            connection.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

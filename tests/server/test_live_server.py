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

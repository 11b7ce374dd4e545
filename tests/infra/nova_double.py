"""A stand-in for an OpenStack cloud's Keystone (v3 password tokens) and Nova (version documents and
``/limits``), served on 127.0.0.1 so that the real openstacksdk client reads it from a real ``clouds.yaml``.

It answers the documented JSON shapes only; it is the test double at the driver's boundary: what Squall
does with the limits is the code under test, not the cloud.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml


class NovaDouble:
    def __init__(self, absolute: dict[str, int]):
        self.absolute = dict(absolute)  # Nova's names: maxTotalCores, totalCoresUsed ...
        self.requests: list[str] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                double.requests.append(f"POST {self.path}")
                if self.path.rstrip("/") == "/identity/v3/auth/tokens":
                    self._answer(201, double.token(), {"X-Subject-Token": "double-token"})
                else:
                    self._answer(404, {"error": self.path})

            def do_GET(self) -> None:  # noqa: N802
                double.requests.append(f"GET {self.path}")
                path = self.path.split("?")[0].rstrip("/")
                if path == "/compute/v2.1/limits":
                    self._answer(200, {"limits": {"absolute": double.absolute, "rate": []}})
                elif path == "/compute/v2.1":
                    self._answer(200, {"version": double.version()})
                elif path == "/compute":
                    self._answer(200, {"versions": [double.version()]})
                else:
                    self._answer(404, {"error": self.path})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def version(self) -> dict:
        return {"id": "v2.1", "status": "CURRENT", "version": "2.90", "min_version": "2.1",
                "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/"}]}

    def token(self) -> dict:
        endpoint = {"id": "c1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne",
                    "url": f"{self.url}/compute/v2.1"}
        return {"token": {
            "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
            "issued_at": "2026-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "squall", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p1", "name": "cfd", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "member"}],
            "catalog": [{"type": "compute", "name": "nova", "id": "s1", "endpoints": [endpoint]}],
        }}

    def clouds_yaml(self, folder: Path, cloud: str) -> Path:
        """A ``clouds.yaml`` naming this double as ``cloud`` (password auth, no real secret)."""
        path = folder / "clouds.yaml"
        path.write_text(yaml.safe_dump({"clouds": {cloud: {
            "auth_type": "v3password", "region_name": "RegionOne", "interface": "public",
            "auth": {"auth_url": f"{self.url}/identity/v3", "username": "squall", "password": "not-a-secret",
                     "project_name": "cfd", "user_domain_name": "Default", "project_domain_name": "Default"}}}}))
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

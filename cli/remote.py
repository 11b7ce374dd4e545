"""The CLI as a client of ``squall server``: ``--server URL`` (or ``$SQUALL_SERVER``), the token in
``$SQUALL_TOKEN``.

``job run | list | status | logs | cancel``, ``usage`` and ``budget show`` then go through the v1 API and
print what they print locally, with the same exit codes: the server answers the same reports, and an
error's envelope carries the CLI's exit code. A job submitted this way runs in a controller on the server,
whatever happens to this process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from squall.errors import (HomeUnusable, InvalidInput, MissingDependency, NotFound, OutputsKept, Refused,
                           SiteUnreachable, SquallError)

ERRORS = {2: InvalidInput, 3: MissingDependency, 4: Refused, 5: SiteUnreachable, 6: OutputsKept, 7: HomeUnusable}
TIMEOUT = 120.0


class Api:
    def __init__(self, url: str, token: str | None):
        if not token:
            raise InvalidInput("SQUALL_TOKEN: a server needs a token ('squall token create' on the server)",
                               hint="export SQUALL_TOKEN=sq_...")
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **options: Any) -> Any:
        """The ``data`` of one API answer; an error answer raised as the CLI's own error."""
        import httpx

        try:
            response = httpx.request(method, f"{self.url}/api/v1{path}", headers=self.headers, timeout=TIMEOUT,
                                     **options)
            body = response.json()
        except httpx.HTTPError as exc:
            raise SiteUnreachable(f"server {self.url}: {exc}", hint="is 'squall server' running there?") from None
        except ValueError:
            raise SiteUnreachable(f"server {self.url} did not answer in JSON (HTTP {response.status_code})",
                                  hint="is it a Squall server? --server is its base URL") from None
        if body.get("success"):
            return body["data"]
        failure = body.get("data") or {}
        error = NotFound if response.status_code == 404 else ERRORS.get(failure.get("exit_code"), SquallError)
        raise error("; ".join(body.get("error_msgs") or [f"HTTP {response.status_code}"]), hint=failure.get("hint"))

    def events(self, job_id: str) -> Iterator[dict]:
        """The job's events as they happen, until it ends (server-sent events)."""
        import httpx

        try:
            with httpx.stream("GET", f"{self.url}/api/v1/jobs/{job_id}/events", headers=self.headers,
                              timeout=httpx.Timeout(TIMEOUT, read=None)) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        yield json.loads(line[6:])
        except httpx.HTTPError as exc:
            raise SiteUnreachable(f"server {self.url}: {exc}") from None


def api_of(server: str | None) -> Api | None:
    url = server or os.environ.get("SQUALL_SERVER")
    return Api(url, os.environ.get("SQUALL_TOKEN")) if url else None


def report(data: dict):
    """A job report as the server answers it, as ``squall.reports`` makes it locally."""
    from squall.reports import JobReport

    data = dict(data)
    code, isolation = data.pop("exit_code"), data.pop("network_isolation")
    for optional in ("hint", "journal"):
        if data.get(optional) is None:
            data.pop(optional, None)
    return JobReport(data, code, isolation)


def submit(api: Api, spec: str, site: str | None, strategy: str) -> dict:
    return upload(api, "/jobs", spec, {"strategy": strategy, **({"site": site} if site else {})})


def upload(api: Api, route: str, spec: str, form: dict) -> dict:
    """Post the spec and every file it names (inputs and script, as the spec resolves them here) to
    ``route``, with the ``form`` fields."""
    from squall.spec import load_spec

    resolved = load_spec(spec)
    named = {item.rel: item.path for item in resolved.inputs}  # each by its path relative to the spec
    if resolved.script is not None:
        named[str(resolved.script.relative_to(Path(resolved.spec_dir).resolve()))] = resolved.script
    handles = []
    try:
        files = [("spec", ("job.yaml", Path(spec).read_bytes()))]
        for rel, path in sorted(named.items()):
            handles.append(open(path, "rb"))
            files.append(("files", (rel, handles[-1])))
        return api.call("POST", route, files=files, data=form)
    finally:
        for handle in handles:
            handle.close()


def wait_for_end(api: Api, job_id: str) -> None:
    for event in api.events(job_id):
        if event["phase"] == "done":
            return


def follow_log(api: Api, job_id: str, task: int, stream: str, follow: bool, write) -> None:
    offset = 0
    while True:
        answer = api.call("GET", f"/jobs/{job_id}/logs", params={"task": task, "stream": stream, "offset": offset})
        write(answer["log"].encode())
        offset = answer["offset"]
        if answer["ended"] or not follow:
            return
        time.sleep(0.5)

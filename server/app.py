"""The server's application: the v1 routes, the envelope on every answer, one store connection per worker
thread."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from contextlib import asynccontextmanager, contextmanager
from importlib.resources import files
from pathlib import Path
from typing import AsyncIterator, Iterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from squall.server import accounts, dashboard, envelope, events, jobs, metrics, placing, takeover
from squall.server.auth import FailedSignIns
from squall.server.headers import SecurityHeaders
from squall.server.hidden_paths import HiddenPaths
from squall.server.upload_limit import DEFAULT_MAX_UPLOAD_MB, UploadLimit
from squall.server.offer import sites_offered
from squall.store import Store

API_VERSION = "1"


def create_app(home: Path, spec_roots: list[Path] | None = None, log_format: str = "text",
               take_over_every: float = takeover.INTERVAL, local_site: bool = False,
               max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB) -> FastAPI:
    """The server over the Squall home ``home``; ``spec_roots``: folders whose specs clients may name by path;
    ``log_format``: its job controllers log as it does; ``take_over_every``: seconds between looks for jobs
    nobody drives (0: never); ``local_site``: offer the server's own machine to API jobs (sandboxed only);
    ``max_upload_mb``: the most one request may upload."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background = app.state.background = [asyncio.create_task(app.state.events.follow())]
        if take_over_every > 0:
            background.append(asyncio.create_task(takeover.keep_taking_over(
                open_store, home, app.state.controller_options, take_over_every)))
        yield
        for task in background:
            task.cancel()

    app = FastAPI(lifespan=lifespan, title="Squall", version=API_VERSION, description="Squall's JSON API: every response is "
                  '{"success", "error_msgs", "data"}; an error\'s data carries the CLI\'s exit code.',
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.home = home
    app.state.spec_roots = [root.resolve() for root in spec_roots or []]
    app.state.failed_sign_ins = FailedSignIns()
    app.state.controller_options = ("--log-format", log_format)
    app.state.refusals = metrics.Refusals()
    app.state.site_offer = sites_offered(local_site)

    opened = threading.local()  # one store connection per worker thread, kept: opening one costs a request

    @contextmanager
    def open_store() -> Iterator[Store]:
        if getattr(opened, "store", None) is None:
            opened.store = Store(home)
            opened.store.db.patience = 0  # a request answers 503 at once while the store does not answer
        yield opened.store

    app.state.open_store = open_store
    Store(home).close()  # made (and migrated) now: a bad home fails at start, not at the first request
    app.state.hidden_paths = HiddenPaths(home, app.state.spec_roots)
    app.state.events = events.EventHub(open_store, app.state.hidden_paths)
    envelope.install(app)
    app.include_router(jobs.router)
    app.include_router(events.router)
    app.include_router(accounts.router)
    app.include_router(metrics.router)
    app.include_router(placing.router)
    app.include_router(dashboard.router)
    app.mount("/dashboard/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.mount("/api/v1/docs/assets", StaticFiles(directory=str(files("fastapi_offline") / "static")),
              name="api-docs-assets")  # Swagger UI 5 (OpenAPI 3.1), packaged: air-gapped sites have no CDN
    app.add_middleware(UploadLimit, limit=max_upload_mb << 20)
    app.state.requests = Counter()
    app.add_middleware(metrics.Requests, count=app.state.requests)
    app.add_middleware(SecurityHeaders)
    return app

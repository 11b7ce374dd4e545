"""``/metrics``: Prometheus metrics of the admin token's organisation, read from the store at each scrape —
jobs by state, queue waits (launch to the first task running), admission refusals, and spend — and of the
server itself: requests by route and status, open event streams, job controllers running."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from squall.server.auth import role
from squall.server.envelope import ERRORS
from squall.tokens import Principal

router = APIRouter(tags=["operations"], responses=ERRORS)
WAIT_WINDOW = 86400.0  # queue waits of the jobs launched in the last day


class Requests:
    """Requests this server answered, by method, route (its template: never a raw path, whose variety has no
    bound) and status; an ASGI middleware, so streams are counted when they start."""

    def __init__(self, app, count: Counter[tuple[str, str, str]]) -> None:
        self.app, self.count = app, count

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counted(message):
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", "unmatched")
                self.count[(scope["method"], route, str(message["status"]))] += 1
            await send(message)

        await self.app(scope, receive, counted)


class ServerCollector:
    """The server's own figures."""

    def __init__(self, store, requests: Counter[tuple[str, str, str]], streams: int):
        self.store, self.requests, self.streams = store, requests, streams

    def collect(self):
        answered = CounterMetricFamily("squall_server_requests", "Requests answered, by method, route and status.",
                                       labels=["method", "route", "status"])
        for (method, route, status), count in sorted(self.requests.items()):
            answered.add_metric([method, route, status], count)
        yield answered
        streams = GaugeMetricFamily("squall_server_event_streams", "Event streams open now.")
        streams.add_metric([], self.streams)
        yield streams
        unfinished = [row[0] for row in self.store.rows("SELECT id FROM jobs WHERE phase != 'done'")]
        running = GaugeMetricFamily("squall_server_controllers", "Job controllers running (on any machine sharing "
                                    "the store), and unfinished jobs none drives.", labels=["state"])
        alive = sum(self.store.locks.controller_alive(job_id) for job_id in unfinished)
        running.add_metric(["running"], alive)
        running.add_metric(["orphaned"], len(unfinished) - alive)
        yield running


class Refusals:
    """Submissions this server refused (a quota, budget, limit or policy), by organisation."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()


# a task seen running, or already ended (a fast one ends between two polls): it started by then
STARTED = ("running", "succeeded", "failed", "timeout")


def queue_waits(store, org: str, since: float) -> list[float]:
    rows = store.rows("SELECT j.job_id, j.phase, j.event, j.ts, j.detail FROM journal j JOIN jobs ON jobs.id = "
                      "j.job_id WHERE jobs.org = ? AND j.ts >= ? AND ((j.phase = 'launch' AND j.event = 'end') OR "
                      "(j.phase = 'monitor' AND j.event = 'task')) ORDER BY j.seq", (org, since))
    launched: dict[str, float] = {}
    waits: dict[str, float] = {}
    for job_id, phase, _event, ts, detail in rows:
        if phase == "launch":
            launched[job_id] = ts
        elif job_id in launched and job_id not in waits and json.loads(detail).get("state") in STARTED:
            waits[job_id] = ts - launched[job_id]
    return list(waits.values())


class OrganisationCollector:
    """The organisation's figures, as Prometheus metric families (prometheus_client writes the format)."""

    def __init__(self, store, org: str, refused: int):
        self.store, self.org, self.refused = store, org, refused

    def collect(self):
        org = self.org
        jobs = GaugeMetricFamily("squall_jobs", "Jobs of the organisation by status.", labels=["org", "status"])
        for status, count in self.store.rows("SELECT status, COUNT(*) FROM jobs WHERE org = ? GROUP BY status",
                                             (org,)):
            jobs.add_metric([org, status], count)
        yield jobs
        waits = queue_waits(self.store, org, time.time() - WAIT_WINDOW)
        summary = SummaryMetricFamily("squall_queue_wait_seconds", "From launch to a job's first running task "
                                      "(jobs launched in the last day).", labels=["org"])
        summary.add_metric([org], count_value=len(waits), sum_value=sum(waits))
        yield summary
        if len(waits) >= 2:
            p95 = GaugeMetricFamily("squall_queue_wait_p95_seconds", "95th percentile of those queue waits.",
                                    labels=["org"])
            p95.add_metric([org], statistics.quantiles(waits, n=20)[-1])
            yield p95
        refusals = CounterMetricFamily("squall_admission_refusals", "Submissions this server refused (quota, "
                                       "budget, limit or policy).", labels=["org"])
        refusals.add_metric([org], self.refused)
        yield refusals
        spend: Counter[str] = Counter()
        for (record,) in self.store.rows("SELECT record FROM usage WHERE org = ?", (org,)):
            actual = json.loads(record)["cost"]["actual"]
            if isinstance(actual, dict) and actual.get("currency"):
                spend[actual["currency"]] += float(actual["amount"])
        spent = CounterMetricFamily("squall_spend", "What the organisation's finished jobs cost.",
                                    labels=["org", "currency"])
        for currency, amount in sorted(spend.items()):
            spent.add_metric([org, currency], amount)
        yield spent


@router.get("/metrics", response_class=Response, summary="Prometheus metrics of the organisation (admins only)",
            responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, who: Principal = Depends(role("admin"))):
    registry = CollectorRegistry()
    with request.app.state.open_store() as store:
        registry.register(OrganisationCollector(store, who.org, request.app.state.refusals.count[who.org]))
        registry.register(ServerCollector(store, request.app.state.requests, len(request.app.state.events.streams)))
        text = generate_latest(registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)

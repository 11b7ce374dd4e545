"""Telling the user and the partner when a job starts and when it ends, with what it costs.

Targets are apprise URLs (``mailto://…``, ``json://host/path`` for a JSON webhook, and the rest of
apprise's list) from the user's config file: ``notify`` per project (``"*"``: every project) and
``partners`` per partner (a spec's ``service.partner``). The URLs often carry credentials, so they
stay in the config file: never in the store, the journal or a log line (a failure names the target by
its scheme only). Each event has an id (``<job>:launched``, ``<job>:finished``) recorded once sent, so
a resumed controller does not send it again; sending is retried (tenacity) and a failure is journaled,
never raised — a notification can never fail a job.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

from squall.store import JobRow, Store

log = logging.getLogger("squall.notify")
ATTEMPTS = 3

Send = Callable[[str, str, str], bool]  # (url, title, body) -> delivered


def apprise_send(url: str, title: str, body: str) -> bool:
    import apprise

    target = apprise.Apprise()
    if not target.add(url):
        raise ValueError("not an apprise URL")
    return bool(target.notify(title=title, body=body))


def targets_for(config: dict, project: str, partner: str | None) -> list[str]:
    notify = config.get("notify") or {}
    urls = list(notify.get(project, [])) + list(notify.get("*", []))
    if partner:
        urls += list((config.get("partners") or {}).get(partner, []))
    return list(dict.fromkeys(urls))


class Notifier:
    def __init__(self, store: Store, config: dict, send: Send = apprise_send):
        self.store, self.config, self.send = store, config, send

    def event(self, job: JobRow, event: str, payload: dict) -> None:
        """Send ``event`` of ``job`` to its targets, once; never raises."""
        service = job.spec.get("service") or {}
        urls = targets_for(self.config, job.project, service.get("partner"))
        if not urls:
            return
        event_id = f"{job.id}:{event}"
        with self.store.transaction() as db:
            claimed = db.execute("INSERT INTO notifications (event_id, job_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                 (event_id, job.id, time.time())).rowcount
        if not claimed:
            return  # sent (or being sent) already
        body = json.dumps({"event_id": event_id, "event": event, "job": job.id, "name": job.name, "org": job.org,
                           "project": job.project, "user": job.user, "site": job.site, **payload}, default=str)
        failed = [scheme for scheme in (self._deliver(url, f"squall: job {job.id} {event}", body) for url in urls)
                  if scheme]
        with self.store.transaction() as db:
            db.execute("UPDATE notifications SET sent_at = ?, failed = ? WHERE event_id = ?",
                       (time.time(), json.dumps(failed), event_id))
        if failed:
            self.store.record(job.id, "notify", "failed", notification=event, targets=failed)

    def _deliver(self, url: str, title: str, body: str) -> str | None:
        """None when delivered; else the target's scheme (the rest of a URL may be a secret)."""
        from tenacity import Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt, wait_fixed

        retrying = Retrying(stop=stop_after_attempt(ATTEMPTS), wait=wait_fixed(0.5),
                            retry=retry_if_result(lambda delivered: not delivered) | retry_if_exception_type(),
                            retry_error_callback=lambda _state: False)
        if retrying(self.send, url, title, body):
            return None
        scheme = url.split("://", 1)[0]
        log.warning("a notification to a %s target failed %d times", scheme, ATTEMPTS)
        return scheme

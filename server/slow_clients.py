"""Connections that never finish a request are closed.

uvicorn times out a connection that idles between two requests, but not one
that never sends a whole request head (a slowloris client dripping a header
byte now and then, or one that connects and says nothing): each would hold a
connection for as long as it likes. ``HeadDeadline`` gives every request head
``seconds`` to arrive, from the connection's start or the previous answer's
end. Production still runs behind a reverse proxy (TLS, body timeouts, per-
client limits); this is the server's own floor.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEAD_SECONDS = 10.0


class HeadDeadline(H11Protocol):
    head_seconds = DEFAULT_HEAD_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._armed_for:  # a request head arrived: its answer is the app's business
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle
        self._deadline = self.loop.call_later(self.head_seconds, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
        self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def with_head_deadline(seconds: float) -> type[H11Protocol]:
    """The HTTP protocol class for ``uvicorn.run(http=...)`` with ``seconds`` for each request head."""
    return type("HeadDeadline", (HeadDeadline,), {"head_seconds": seconds})

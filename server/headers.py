"""Security headers on every answer of the server (an ASGI middleware: it never buffers a stream).

Nothing the server sends may be framed by another site, sniffed into another
type or leak its address in a Referer; authenticated answers are never
cached. The dashboard's pages and the API's documentation page (Swagger UI,
its assets from the fastapi-offline package) run scripts from the server alone (no
inline script: ``static/``); JSON and downloads may load nothing at all.
"""

from __future__ import annotations

PAGES = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
         "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
NOTHING = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
COMMON = {b"x-content-type-options": b"nosniff", b"referrer-policy": b"no-referrer",
          b"x-frame-options": b"DENY"}


def policy_for(path: str, content_type: bytes) -> str:
    if content_type.startswith(b"text/html"):
        return PAGES
    return NOTHING


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                wanted = {**COMMON, b"content-security-policy": policy_for(path, content_type).encode()}
                if path.startswith("/api/") or path.startswith("/dashboard"):
                    wanted[b"cache-control"] = b"no-store"
                headers += [(name, value) for name, value in wanted.items() if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

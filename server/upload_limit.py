"""The most a request may upload (``squall server --max-upload-mb``): larger ones are 413 in the envelope.

A request that declares a larger ``Content-Length`` is refused before its body
is read; one that does not (chunked) is refused as soon as the bytes read pass
the limit — the multipart parser never spools more than that to disk.
"""

from __future__ import annotations

from fastapi import HTTPException

from squall.errors import ExitCode
from squall.server.envelope import failure

DEFAULT_MAX_UPLOAD_MB = 4096


def too_large(limit: int) -> str:
    return f"upload: larger than this server takes ({limit >> 20} MiB; squall server --max-upload-mb)"


class UploadLimit:
    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            response = failure(413, [too_large(self.limit)], int(ExitCode.INVALID_INPUT))
            return await response(scope, receive, send)
        read = 0

        async def counted():
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.limit:  # FastAPI lets an HTTPException from the body's reading through
                    raise HTTPException(413, too_large(self.limit))
            return message

        await self.app(scope, counted, send)

"""The one shape of every response: ``{"success": bool, "error_msgs": [...], "data": ...}``.

An error's data carries the CLI's exit code for the same failure (and its
hint), so a client can act as the CLI would; the HTTP status says the same
in HTTP's words. Nothing internal (a traceback, a path of the server's own)
reaches a client: an unexpected error is logged here and answered 500.
"""

from __future__ import annotations

import logging
import traceback
from typing import Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from squall.errors import ExitCode, NotFound, SquallError

T = TypeVar("T")
log = logging.getLogger("squall.server")
LOGGED_CHARS = 500  # of an unexpected error's message

HTTP_STATUS = {
    ExitCode.JOB_FAILED: 200,  # the request worked; the job's own outcome is in the data
    ExitCode.INVALID_INPUT: 422,
    ExitCode.MISSING_DEPENDENCY: 503,
    ExitCode.REFUSED: 409,
    ExitCode.SITE_UNREACHABLE: 502,
    ExitCode.OUTPUTS_KEPT: 507,
    ExitCode.HOME_UNUSABLE: 503,
    ExitCode.INTERRUPTED: 503,
}
EXIT_CODE_OF_STATUS = {400: ExitCode.INVALID_INPUT, 401: ExitCode.REFUSED, 403: ExitCode.REFUSED,
                       404: ExitCode.INVALID_INPUT, 405: ExitCode.INVALID_INPUT, 413: ExitCode.INVALID_INPUT,
                       422: ExitCode.INVALID_INPUT, 429: ExitCode.REFUSED}


class Failure(BaseModel):
    exit_code: int
    hint: str | None = None


class Envelope(BaseModel, Generic[T]):
    success: bool
    error_msgs: list[str]
    data: T | None = None


def ok(data, status: int = 200, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"success": True, "error_msgs": [], "data": data}, status_code=status, headers=headers)


def failure(status: int, messages: list[str], exit_code: int, hint: str | None = None,
            headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"success": False, "error_msgs": messages, "data": {"exit_code": exit_code, "hint": hint}},
                        status_code=status, headers=headers)


ERRORS = {status: {"model": Envelope[Failure], "description": description} for status, description in (
    (401, "no token, or not a valid one"), (403, "the token's role may not do this"),
    (404, "no such thing in the token's organisation"), (409, "refused: quota, budget, limit or policy"),
    (422, "invalid input (the field is named)"), (429, "too many failed sign-ins from this client"),
    (502, "the site could not be reached"), (503, "a tool the server needs is missing"))}


def install(app: FastAPI) -> None:
    """Every error, expected or not, answered in the envelope."""

    @app.exception_handler(SquallError)
    async def squall_error(request: Request, exc: SquallError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else HTTP_STATUS.get(exc.exit_code, 500)
        hidden = request.app.state.hidden_paths
        return failure(status, [hidden.text(exc.message)], int(exc.exit_code), hidden.hide(exc.hint))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 401 and request.url.path.startswith("/dashboard"):
            return RedirectResponse("/dashboard/sign-in", status_code=303)  # a person, not a program
        code = EXIT_CODE_OF_STATUS.get(exc.status_code, ExitCode.INVALID_INPUT)
        return failure(exc.status_code, [request.app.state.hidden_paths.text(str(exc.detail))], int(code),
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = [f"{'.'.join(str(p) for p in error['loc'] if p != 'body')}: {error['msg']}"
                    for error in exc.errors()]
        return failure(422, messages, int(ExitCode.INVALID_INPUT))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # one bounded line, never the whole traceback (a deep path once logged 6.6 MB per request)
        frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f"{frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame else "?"
        log.error("unexpected error on %s %s at %s: %s", request.method, request.url.path[:200], where,
                  repr(exc)[:LOGGED_CHARS])
        return failure(500, ["internal error (logged by the server)"], int(ExitCode.JOB_FAILED))

"""Errors as clients see them: a JSON body with the message and the fix, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from evergraph.errors import (
    EvergraphError,
    PlaybookConflictError,
    ServiceError,
    StoreError,
    UsageError,
)

log = logging.getLogger(__name__)


class NotFound(UsageError):
    """What the request names does not exist (in this namespace)."""


class Unauthorized(UsageError):
    """No key, or a key that is not valid."""


class Forbidden(UsageError):
    """A valid key for another namespace."""


class RateLimited(UsageError):
    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, fix=f"retry in {max(retry_after, 0.1):.1f} s")
        self.retry_after = retry_after


def status_of(error: EvergraphError) -> int:
    statuses: list[tuple[type[EvergraphError], int]] = [
        (NotFound, 404),
        (Unauthorized, 401),
        (Forbidden, 403),
        (RateLimited, 429),
        (PlaybookConflictError, 409),
        (UsageError, 400),
        (StoreError, 503),
        (ServiceError, 503),
    ]
    return next((code for kind, code in statuses if isinstance(error, kind)), 500)


def _body(error: str, fix: str | None = None) -> dict[str, str | None]:
    return {"error": error, "fix": fix}


async def _evergraph(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EvergraphError)
    status = status_of(exc)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        log.warning("request failed: %s", exc.message, extra={"path": request.url.path})
    return JSONResponse(_body(exc.message, exc.fix), status_code=status, headers=headers)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]
    )
    return JSONResponse(
        _body(f"invalid request: {problems}", "see /docs or /openapi.json for the schema"),
        status_code=422,
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _bug(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return JSONResponse(_body("internal error; the server log has the details"), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(EvergraphError, _evergraph)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _bug)

"""The application: settings, database, executor and routes, wired in a lifespan."""

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app import logs
from app.api import executions, health, profiles
from app.api.limits import BodySizeLimit
from app.errors import DomainError, InvalidRequest
from app.runtime import open_runtime
from app.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; nothing connects until the lifespan starts."""
    settings = settings or get_settings()
    app = FastAPI(
        title="parallel-exec",
        version="0.1.0",
        summary="Plan a software task as a graph of agent steps; run them in parallel.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(executions.router)
    app.include_router(profiles.router)
    app.include_router(executions.stream_router)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    logs.configure(settings.log_level)
    # the signal handlers outlive the runtime: a second signal must reach the
    # executor while it waits out the grace period, as the runtime closes
    with ExitStack() as signals:
        async with open_runtime(settings) as runtime:
            app.state.database = runtime.database
            app.state.broker = runtime.broker
            app.state.service = runtime.service
            app.state.registry = runtime.registry
            signals.enter_context(_told_to_stop(runtime.executor.begin_shutdown))
            yield


@contextmanager
def _told_to_stop(callback: Callable[[], None]) -> Iterator[None]:
    """Run callback in the event loop when SIGTERM or SIGINT arrives.

    The server's own handlers (uvicorn's) still run: they stop the server, which
    then waits for its open requests before the lifespan ends. The callback lets
    the executor stop taking work at the signal itself, not after that wait.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    # only the signals the server handles; their handlers still run after ours
    previous: dict[signal.Signals, Callable[..., Any]] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(sig)
        if callable(handler):
            previous[sig] = handler

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        previous[signal.Signals(signum)](signum, frame)

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    return JSONResponse(error.body(), status_code=error.status_code)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [_problem(problem, request) for problem in error.errors()]
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    body = InvalidRequest(f"invalid request: {summary}", errors=problems).body()
    return JSONResponse(body, status_code=422)


def _problem(problem: dict[str, Any], request: Request) -> dict[str, str]:
    location = [str(part) for part in problem["loc"]]
    if problem["type"] == "json_invalid":
        position = location[1] if len(location) > 1 else "?"
        return {"field": "body", "problem": f"not valid JSON (at character {position})"}
    content_type = request.headers.get("content-type", "")
    if location == ["body"] and "json" not in content_type:
        return {
            "field": "body",
            "problem": "send a JSON object with Content-Type: application/json",
        }
    return {"field": ".".join(location), "problem": problem["msg"]}


BODY_UNREADABLE = "There was an error parsing the body"  # FastAPI's words
HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 400 and error.detail == BODY_UNREADABLE:
        # FastAPI does not say which: bad UTF-8, or JSON too deep to decode
        problem = "not valid UTF-8 JSON, or nested too deeply"
        invalid = InvalidRequest.on_field("body", problem)
        return JSONResponse(invalid.body(), status_code=invalid.status_code)
    if isinstance(error.detail, dict) and "error" in error.detail:
        return JSONResponse(error.detail, status_code=error.status_code)
    code = HTTP_ERROR_CODES.get(error.status_code, "http_error")
    body = {"error": {"code": code, "message": str(error.detail), "details": {}}}
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)

"""Request dependencies, as Annotated aliases named for what they give."""

import secrets
from typing import Annotated

from fastapi import Depends, Request, WebSocket

from app.errors import Unauthorized
from app.events.broker import Broker
from app.execution.service import ExecutionService


def _service(request: Request) -> ExecutionService:
    return request.app.state.service


def require_api_key(request: Request) -> None:
    """Refuse the request unless it carries the configured API key."""
    expected = request.app.state.settings.api_key
    if expected and not _matches(request.headers.get("x-api-key"), expected):
        raise Unauthorized("missing or wrong X-API-Key header")


def websocket_key_ok(websocket: WebSocket) -> bool:
    expected = websocket.app.state.settings.api_key
    given = websocket.headers.get("x-api-key") or websocket.query_params.get("api_key")
    return not expected or _matches(given, expected)


def _matches(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given, expected)


def websocket_service(websocket: WebSocket) -> ExecutionService:
    return websocket.app.state.service


def websocket_broker(websocket: WebSocket) -> Broker:
    return websocket.app.state.broker


Service = Annotated[ExecutionService, Depends(_service)]

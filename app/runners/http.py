"""The http runner: carries out a step by POSTing its context to a web service.

The request is ``POST <url>`` with the step's context (``StepContext.as_dict``)
as a JSON body, the profile's ``headers`` and these:

    Accept: application/json, application/x-ndjson, text/event-stream
    Idempotency-Key: <run_id>           (the same for a repeat of the attempt)
    Authorization: Bearer <key>         (only with api_key_env)

A successful reply (2xx) is read by its Content-Type:

- ``application/json``: one result object;
- ``application/x-ndjson``: a stream of JSON objects, one per line;
- ``text/event-stream``: a stream of server-sent events, each event's data (its
  ``data:`` lines joined by newlines) one JSON object.

A result object is ``{"output": <any JSON>, "state_updates": {...},
"usage": {"input_tokens": int, "output_tokens": int, "cost": number}}``, where
only ``output`` is required and every usage field is optional. In a stream,
``{"log": "text"}`` is a progress line (one per line of text), the first
object with ``output`` is the result (the stream is not read beyond it), and
``{"error": "message"}`` fails the run; other objects are ignored. A JSON
reply holding ``error`` and no ``output`` fails the run too. A stream that ends
without a result, a reply of any other shape, and an error reply (a 4xx other
than 429, or a 5xx once the retries are spent) fail the run with what was
wrong and the start of the body.

Retries, redirects, limits and secrets are handled as ``app/runners/web.py``
describes.
"""

import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from app.runners.base import Progress, StepContext, StepResult, Usage
from app.runners.web import (
    DEFAULT_RETRY,
    WebClient,
    WebOptions,
    WebRetry,
    bearer_headers,
    check_http_url,
    media_type,
    read_api_key,
)

logger = logging.getLogger(__name__)

ACCEPT = "application/json, application/x-ndjson, text/event-stream"

_JSON = "application/json"
_NDJSON = "application/x-ndjson"
_SSE = "text/event-stream"
_OWN_HEADERS = {"accept", "authorization", "content-type", "idempotency-key"}


class _BadReply(Exception):
    """A reply object that does not follow the protocol; the message says how."""


class _ReportedError(Exception):
    """The peer said, in a reply object, that the step failed."""


class HttpRunner:
    """POSTs each step to an operator's web service and reads the result it sends."""

    kind = "http"

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        api_key_env: str | None = None,
        request_timeout_s: float = 300.0,
        retry: WebRetry = DEFAULT_RETRY,
        max_output_bytes: int,
        max_log_line_bytes: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        check_http_url(url)
        headers = dict(headers or {})
        taken = sorted(name for name in headers if name.lower() in _OWN_HEADERS)
        if taken:
            raise ValueError(f"headers set by the runner itself: {', '.join(taken)}")
        self.url = url
        self.headers = headers
        self.api_key_env = api_key_env
        self.options = WebOptions(
            retry=retry,
            request_timeout_s=request_timeout_s,
            max_output_bytes=max_output_bytes,
            max_log_line_bytes=max_log_line_bytes,
            transport=transport,
        )

    async def run(self, context: StepContext, progress: Progress) -> StepResult:
        """POST the step's context and turn the reply into a result."""
        key = read_api_key(self.api_key_env)
        web = WebClient(self.url, self.options, progress, secrets=[key] if key else [])
        headers = {
            **self.headers,
            "Accept": ACCEPT,
            "Idempotency-Key": context.run_id,
            **bearer_headers(key),
        }

        async with web.post(context.as_dict(), headers) as response:
            logger.debug(
                "http.reply",
                extra={"peer": web.peer, "status": response.status_code},
            )
            result = await _reply(web, response)
        return web.cleaned(result)


async def _reply(web: WebClient, response: httpx.Response) -> StepResult:
    """The result a reply holds, read as its Content-Type says."""
    kind = media_type(response)
    if kind == _JSON:
        return await _json_reply(web, response)
    if kind == _NDJSON:
        return await _streamed_reply(web, web.lines(response), "line")
    if kind == _SSE:
        return await _streamed_reply(web, web.events(response), "event")
    body = await web.read_body(response)
    raise web.failure(
        f"the reply from {web.peer} has Content-Type '{kind}', not one of "
        f"{ACCEPT}: {web.preview(body)}",
        content_type=kind,
    )


async def _json_reply(web: WebClient, response: httpx.Response) -> StepResult:
    body = await web.read_body(response)
    try:
        reply = _json_object(body)
        _raise_reported_error(reply)
        if "output" not in reply:
            raise _BadReply("has no 'output'")
        return _step_result(reply)
    except _BadReply as exc:
        raise web.failure(
            f"the reply from {web.peer} {exc}: {web.preview(body)}"
        ) from None
    except _ReportedError as exc:
        raise web.failure(f"{web.peer} reported an error: {exc}") from None


async def _streamed_reply(
    web: WebClient, items: AsyncIterator[str], unit: str
) -> StepResult:
    """Read a stream of objects up to its result, logging the progress it holds."""
    number = 0
    async with aclosing(items):
        async for item in items:
            number += 1
            if not item.strip():
                continue
            try:
                message = _json_object(item)
                _raise_reported_error(message)
                await _log_message(web, message)
                if "output" in message:
                    return _step_result(message)
            except _BadReply as exc:
                raise web.failure(
                    f"{unit} {number} of the stream from {web.peer} {exc}: "
                    f"{web.preview(item)}"
                ) from None
            except _ReportedError as exc:
                raise web.failure(f"{web.peer} reported an error: {exc}") from None

    raise web.failure(f"the stream from {web.peer} ended without a result")


async def _log_message(web: WebClient, message: dict[str, Any]) -> None:
    if "log" not in message:
        return
    text = message["log"]
    if not isinstance(text, str):
        raise _BadReply("has a 'log' that is not a string")
    for line in text.splitlines():
        if line.strip():
            await web.log(line)


def _raise_reported_error(reply: dict[str, Any]) -> None:
    if "error" in reply and "output" not in reply:
        error = reply["error"]
        raise _ReportedError(error if isinstance(error, str) else json.dumps(error))


def _json_object(text: str | bytes) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise _BadReply("is not valid JSON") from None
    if not isinstance(value, dict):
        raise _BadReply("is not a JSON object")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _step_result(reply: dict[str, Any]) -> StepResult:
    state_updates = reply.get("state_updates")
    if state_updates is None:
        state_updates = {}
    if not isinstance(state_updates, dict):
        raise _BadReply("has a 'state_updates' that is not a JSON object")
    return StepResult(
        output=reply["output"],
        state_updates=state_updates,
        usage=_usage(reply.get("usage")),
    )


def _usage(value: Any) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _BadReply("has a 'usage' that is not a JSON object")

    counts = {}
    for name in ("input_tokens", "output_tokens"):
        count = value.get(name, 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _BadReply(f"has a 'usage.{name}' that is not a whole number >= 0")
        counts[name] = count

    cost = value.get("cost")
    if cost is not None and not _is_amount(cost):
        raise _BadReply("has a 'usage.cost' that is not a number >= 0")
    return Usage(**counts, cost=None if cost is None else float(cost))


def _is_amount(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )

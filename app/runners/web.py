"""What the web runners share: one POST to a peer, sent with care.

A ``WebClient`` carries one run's exchange with one URL:

- retries: a reply of 429, 500, 502, 503, 504 or 529, or a connection that could
  not be made (so nothing was sent), is sent again up to
  ``WebRetry.max_retries`` times. The wait is the peer's ``Retry-After``
  (seconds or an HTTP date), else an exponential backoff with jitter; a
  ``Retry-After`` above ``max_retry_after_s`` fails the run at once. Each wait
  is one progress line. What goes wrong once the request was sent (a read
  timeout, a dropped connection) is not retried here: the step's own retry
  policy decides about that.
- redirects: only 307 and 308 to the same origin (scheme, host and port) are
  followed, keeping the method and the body, at most ``MAX_REDIRECTS`` in a row.
  Any other redirect fails the run, naming the status and the Location.
- timeouts: ``request_timeout_s`` bounds each wait on the peer (to connect, to
  send, and for the next bytes of the reply); the step's timeout bounds the run.
- limits: a reply body, or one line or event of a streamed reply, larger than
  ``max_output_bytes`` fails the run without being read whole; progress lines
  are cut to ``max_log_line_bytes``.
- secrets: the secret values of a run (its API key) are replaced by ``***`` in
  every progress line, error message and detail the client produces, and in
  the output and state updates of the result (``cleaned``). A key is
  read from the environment at run time and sent only as
  ``Authorization: Bearer <key>``; no header is ever logged.

A cancel closes the reply and the connection before ``CancelledError`` goes on,
so the peer sees the connection drop. The environment's proxy variables are
ignored: a request goes straight to the profile's URL.
"""

import asyncio
import email.utils
import functools
import json
import logging
import math
import os
import random
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from app.runners.base import Progress, RunFailed, StepResult

logger = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
MAX_REDIRECTS = 5
REDACTED = "***"
BODY_PREVIEW_CHARS = 300

_FOLLOWED_REDIRECTS = (307, 308)
_ERROR_BODY_BYTES = 8 * 1024

ErrorText = Callable[[bytes], str | None]


@dataclass(frozen=True)
class WebRetry:
    """How a request is sent again after an overload or a connection failure."""

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
        for name in ("backoff_s", "max_backoff_s", "max_retry_after_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must not be negative")

    def backoff(self, retry: int) -> float:
        """The wait before this retry (1 for the first): doubling, capped, jittered."""
        ceiling = min(self.backoff_s * 2.0 ** (retry - 1), self.max_backoff_s)
        return random.uniform(ceiling / 2, ceiling)


DEFAULT_RETRY = WebRetry()


@dataclass(frozen=True)
class WebOptions:
    """The options of a web runner that shape each of its exchanges."""

    retry: WebRetry
    request_timeout_s: float
    max_output_bytes: int
    max_log_line_bytes: int
    transport: httpx.AsyncBaseTransport | None = None

    def __post_init__(self) -> None:
        if not self.request_timeout_s > 0:
            raise ValueError("request_timeout_s must be positive")


def redact(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret value replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value with every secret removed from the strings it holds."""
    secrets = list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: redact_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item, secrets) for item in value]
    return value


def cut_line(line: str, max_bytes: int) -> str:
    """The line cut to at most max_bytes of UTF-8, with a marker saying so."""
    data = line.encode("utf-8", errors="replace")
    if len(data) <= max_bytes:
        return line
    marker = f" [line cut at {max_bytes} bytes]"
    room = max(max_bytes - len(marker), 0)
    return data[:room].decode("utf-8", errors="ignore") + marker


def preview(body: bytes | str, secrets: Iterable[str]) -> str:
    """The start of a body for an error message: secrets removed, then cut."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = redact(text.strip(), secrets)
    if len(text) <= BODY_PREVIEW_CHARS:
        return text
    return text[:BODY_PREVIEW_CHARS] + "..."


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """The wait a Retry-After header asks for; None when it holds no valid one."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until(value, now or datetime.now(UTC))
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until(http_date: str, now: datetime) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def read_api_key(variable: str | None) -> str | None:
    """The API key held by that environment variable, read now; None without one."""
    if variable is None:
        return None
    key = os.environ.get(variable, "").strip()
    if not key:
        raise RunFailed(
            f"the environment variable {variable} that should hold the API key "
            "is not set or is empty",
            api_key_env=variable,
        )
    if not key.isprintable() or " " in key:
        raise RunFailed(
            f"the API key in the environment variable {variable} holds spaces or "
            "control characters",
            api_key_env=variable,
        )
    return key


def bearer_headers(key: str | None) -> dict[str, str]:
    """The Authorization header that carries the key, when there is one."""
    return {"Authorization": f"Bearer {key}"} if key else {}


def media_type(response: httpx.Response) -> str:
    """The reply's Content-Type without its parameters, in lower case."""
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def peer_name(url: httpx.URL) -> str:
    """The host and port of a URL, never its user information."""
    return url.netloc.decode("ascii")


def check_http_url(url: str) -> httpx.URL:
    """The URL parsed; ValueError unless it is an absolute http or https URL."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http or https URL: {url!r}")
    return parsed


class SseParser:
    """Turns the lines of a text/event-stream into the data of each event.

    Data lines of one event are joined by newlines; comments and fields other
    than ``data`` are ignored; an event without data is no event.
    """

    def __init__(self) -> None:
        self._data: list[str] = []
        self._size = 0

    def feed(self, line: str) -> str | None:
        """Take one line; return the data of the event it ends, if any."""
        if not line:
            return self.finish()
        field, _, value = line.partition(":")
        if field == "data":
            value = value.removeprefix(" ")
            self._data.append(value)
            self._size += len(value) + 1
        return None

    def finish(self) -> str | None:
        """The data of the event still open, taken as ended."""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()
        self._size = 0
        return data

    @property
    def pending_size(self) -> int:
        """How many characters the open event holds so far."""
        return self._size


class WebClient:
    """One run's exchange with a peer URL: retries, redirects, limits, secrets."""

    def __init__(
        self,
        url: str,
        options: WebOptions,
        progress: Progress,
        secrets: Iterable[str] = (),
    ) -> None:
        self.url = httpx.URL(url)
        self.peer = peer_name(self.url)
        self.options = options
        self.progress = progress
        self.secrets = [secret for secret in secrets if secret]

    async def log(self, line: str) -> None:
        """Report one progress line, secrets removed and cut to the line limit."""
        line = redact(line, self.secrets)
        await self.progress.log(cut_line(line, self.options.max_log_line_bytes))

    def failure(self, message: str, **details: Any) -> RunFailed:
        """A RunFailed whose message and details hold no secret."""
        return RunFailed(
            redact(message, self.secrets), **redact_value(details, self.secrets)
        )

    def preview(self, body: bytes | str) -> str:
        return preview(body, self.secrets)

    def cleaned(self, result: StepResult) -> StepResult:
        """The result with the run's secrets removed from its output and state."""
        if not self.secrets:
            return result
        state = {
            redact(key, self.secrets): redact_value(value, self.secrets)
            for key, value in result.state_updates.items()
        }
        output = redact_value(result.output, self.secrets)
        return StepResult(output=output, state_updates=state, usage=result.usage)

    @asynccontextmanager
    async def post(
        self,
        payload: Any,
        headers: dict[str, str],
        *,
        error_text: ErrorText | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Send the payload as JSON; yield the successful reply, its body unread.

        Error replies become RunFailed (``error_text`` may pick the peer's own
        message out of the body); so do the transport errors of reading the
        body inside the block.
        """
        content = json.dumps(payload, default=str).encode()
        headers = {**headers, "Content-Type": "application/json"}
        async with self._client() as client:
            request = client.build_request(
                "POST", self.url, content=content, headers=headers
            )
            try:
                response, tries = await self._send(client, request)
            except httpx.HTTPError as exc:
                raise self._failure_before_reply(exc) from exc

            try:
                await self._raise_for_status(response, tries, error_text)
                yield response
            except httpx.HTTPError as exc:
                raise self._failure_during_reply(exc) from exc
            finally:
                await response.aclose()

    async def read_body(self, response: httpx.Response) -> bytes:
        """The whole reply body; RunFailed when it is larger than the limit."""
        limit = self.options.max_output_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large()

        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                raise self._too_large()
        return bytes(body)

    async def lines(self, response: httpx.Response) -> AsyncIterator[str]:
        """The lines of the reply as they arrive, without their line ends."""
        limit = self.options.max_output_bytes
        buffer = bytearray()
        async for chunk in response.aiter_bytes():
            buffer += chunk
            start = 0
            while (end := buffer.find(b"\n", start)) != -1:
                if end - start > limit:
                    raise self._too_large("a line of ")
                yield _decode_line(buffer[start:end])
                start = end + 1
            del buffer[:start]
            if len(buffer) > limit:
                raise self._too_large("a line of ")
        if buffer:
            yield _decode_line(buffer)

    async def events(self, response: httpx.Response) -> AsyncIterator[str]:
        """The data of each server-sent event of the reply, as it arrives."""
        parser = SseParser()
        async with aclosing(self.lines(response)) as lines:
            async for line in lines:
                data = parser.feed(line)
                if parser.pending_size > self.options.max_output_bytes:
                    raise self._too_large("an event of ")
                if data is not None:
                    yield data
        if (data := parser.finish()) is not None:
            yield data

    def _client(self) -> httpx.AsyncClient:
        transport = self.options.transport
        return httpx.AsyncClient(
            transport=None if transport is None else _Borrowed(transport),
            timeout=httpx.Timeout(self.options.request_timeout_s),
            verify=_ssl_context(),
            follow_redirects=False,
            trust_env=False,
        )

    async def _send(
        self, client: httpx.AsyncClient, request: httpx.Request
    ) -> tuple[httpx.Response, int]:
        """The first reply neither retried nor followed, and the tries it took."""
        retries = redirects = 0
        limit = self.options.retry.max_retries
        while True:
            try:
                response = await client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                reason = f"could not connect to {self.peer} ({_describe(exc)})"
                if retries >= limit:
                    tries = retries + 1
                    raise self.failure(
                        f"{reason} after {tries} tries", peer=self.peer, tries=tries
                    ) from exc
                retries += 1
                await self._wait_to_retry(reason, retries, None)
                continue

            status = response.status_code
            if status in RETRIED_STATUSES and retries < limit:
                try:
                    wait_s = self._retry_wait(response)
                finally:
                    await response.aclose()
                retries += 1
                await self._wait_to_retry(
                    f"HTTP {status} from {self.peer}", retries, wait_s
                )
                continue

            if 300 <= status < 400:
                try:
                    request = self._redirected(request, response, redirects)
                finally:
                    await response.aclose()
                redirects += 1
                continue
            return response, retries + 1

    def _retry_wait(self, response: httpx.Response) -> float | None:
        """The peer's Retry-After, if any; RunFailed when it asks for too long."""
        wait_s = retry_after_seconds(response.headers.get("retry-after"))
        limit = self.options.retry.max_retry_after_s
        if wait_s is not None and wait_s > limit:
            raise self.failure(
                f"HTTP {response.status_code} from {self.peer} asks to wait "
                f"{wait_s:g} s before trying again (Retry-After), more than the "
                f"{limit:g} s allowed (max_retry_after_s)",
                status=response.status_code,
                retry_after_s=wait_s,
            )
        return wait_s

    async def _wait_to_retry(
        self, reason: str, retry: int, wait_s: float | None
    ) -> None:
        if wait_s is None:
            wait_s = self.options.retry.backoff(retry)
        total = self.options.retry.max_retries
        logger.info(
            "web.retrying",
            extra={"peer": self.peer, "retry": retry, "wait_s": round(wait_s, 3)},
        )
        await self.log(
            f"{reason}; trying again in {wait_s:.1f} s (retry {retry} of {total})"
        )
        await asyncio.sleep(wait_s)

    def _redirected(
        self, request: httpx.Request, response: httpx.Response, redirects: int
    ) -> httpx.Request:
        """The request to send next for a redirect that may be followed."""
        status = response.status_code
        location = response.headers.get("location", "")
        if status not in _FOLLOWED_REDIRECTS or not location:
            raise self.failure(
                f"HTTP {status} from {self.peer} redirects to '{location}'; only "
                "307 and 308 to the same origin are followed",
                status=status,
                location=location,
            )

        try:
            target = request.url.join(location)
        except httpx.InvalidURL as exc:
            raise self.failure(
                f"HTTP {status} from {self.peer} redirects to an invalid URL "
                f"'{location}'",
                status=status,
                location=location,
            ) from exc
        if _origin(target) != _origin(request.url):
            raise self.failure(
                f"HTTP {status} from {self.peer} redirects to another origin "
                f"('{location}'); a request never follows a redirect there",
                status=status,
                location=location,
            )
        if redirects >= MAX_REDIRECTS:
            raise self.failure(
                f"{self.peer} redirected more than {MAX_REDIRECTS} times in a row",
                status=status,
                location=location,
            )
        return httpx.Request(
            request.method, target, headers=request.headers, content=request.content
        )

    async def _raise_for_status(
        self, response: httpx.Response, tries: int, error_text: ErrorText | None
    ) -> None:
        if response.is_success:
            return

        body = await _read_start(response, _ERROR_BODY_BYTES)
        text = (error_text(body) if error_text else None) or body
        message = f"HTTP {response.status_code} from {self.peer}"
        if tries > 1:
            message += f" after {tries} tries"
        if shown := self.preview(text):
            message += f": {shown}"
        raise self.failure(
            message, status=response.status_code, body=self.preview(body)
        )

    def _failure_before_reply(self, exc: httpx.HTTPError) -> RunFailed:
        timeout_s = self.options.request_timeout_s
        if isinstance(exc, httpx.TimeoutException):
            return self.failure(
                f"no reply from {self.peer} within {timeout_s:g} s "
                "(request_timeout_s); not retried",
                peer=self.peer,
                request_timeout_s=timeout_s,
            )
        return self.failure(
            f"the request to {self.peer} failed: {_describe(exc)}", peer=self.peer
        )

    def _failure_during_reply(self, exc: httpx.HTTPError) -> RunFailed:
        timeout_s = self.options.request_timeout_s
        if isinstance(exc, httpx.TimeoutException):
            return self.failure(
                f"the reply from {self.peer} stalled: nothing came for {timeout_s:g} "
                "s (request_timeout_s); not retried",
                peer=self.peer,
                request_timeout_s=timeout_s,
            )
        return self.failure(
            f"reading the reply from {self.peer} failed: {_describe(exc)}",
            peer=self.peer,
        )

    def _too_large(self, part: str = "") -> RunFailed:
        limit = self.options.max_output_bytes
        return self.failure(
            f"{part}the reply from {self.peer} is larger than {limit} bytes "
            "(max_output_bytes)",
            peer=self.peer,
            max_output_bytes=limit,
        )


class _Borrowed(httpx.AsyncBaseTransport):
    """A transport given to a runner: each run's client uses it, none closes it."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._transport.handle_async_request(request)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # made once: loading the CA certificates takes tens of milliseconds, which
    # each run's client would otherwise spend blocking the event loop
    return httpx.create_ssl_context()


async def _read_start(response: httpx.Response, max_bytes: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= max_bytes:
            break
    return bytes(body[:max_bytes])


def _decode_line(line: bytes | bytearray) -> str:
    return bytes(line).decode("utf-8", errors="replace").removesuffix("\r")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

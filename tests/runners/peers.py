"""Stand-in peers for the web runners: real HTTP servers on 127.0.0.1.

A peer answers each request with the next reply of its script, then with its
default reply, and records every request it got. A reply is a function of one
``Exchange``: the request, and the means to answer it. ``WebhookPeer`` answers
in the http runner's protocol by default, ``OpenAIPeer`` as a chat-completions
server.
"""

import asyncio
import http.server
import json
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

PATIENCE_SECONDS = 60.0  # catches a hang; measures nothing
STAND_IN_MODEL = "stand-in-model"
SECRET = "sk-test-SECRET-123"  # a key distinctive enough to search for


def runner_options(**overrides: Any) -> dict[str, Any]:
    """A web runner's options for the tests: quick retries, roomy limits."""
    from app.runners.web import WebRetry

    return {
        "retry": WebRetry(max_retries=2, backoff_s=0.01),
        "request_timeout_s": 30.0,
        "max_output_bytes": 64 * 1024,
        "max_log_line_bytes": 4096,
        **overrides,
    }


def everything_reported(failure: Any, progress: Any) -> str:
    """All the text a failed run leaves behind: message, details, progress."""
    return "\n".join([failure.message, json.dumps(failure.details), *progress.lines])


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the peer got it; header names in lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)


Reply = Callable[["Exchange"], None]


class Exchange:
    """One request being answered."""

    def __init__(
        self,
        handler: http.server.BaseHTTPRequestHandler,
        peer: "Peer",
        request: ReceivedRequest,
    ) -> None:
        self.request = request
        self.peer = peer
        self._handler = handler

    def send(
        self,
        status: int,
        body: bytes | str = b"",
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = _bytes(body)
        self._head(status, {"Content-Type": content_type, **(headers or {})}, data)
        self._handler.wfile.write(data)

    def start_stream(self, content_type: str, status: int = 200) -> None:
        """Send the head of a reply whose body comes in chunks."""
        self._head(status, {"Content-Type": content_type}, None)

    def send_chunk(self, data: bytes | str) -> None:
        data = _bytes(data)
        if data:
            self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        self._handler.wfile.write(b"0\r\n\r\n")

    def pause(self, seconds: float) -> None:
        """Wait, unless the peer is stopping."""
        self.peer.stopping.wait(seconds)

    def hold_until_disconnect(self) -> None:
        """Send nothing more, and note when the client closes the connection."""
        self._handler.close_connection = True
        connection = self._handler.connection
        deadline = time.monotonic() + PATIENCE_SECONDS
        while not self.peer.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], 0.05)
            if not readable:
                continue
            try:
                data = connection.recv(4096)
            except OSError:
                data = b""
            if not data:
                self.peer.disconnected.set()
                return

    def write_until_disconnect(self, filler: bytes, *, chunked: bool) -> None:
        """Keep sending filler until the client closes the connection."""
        self._handler.close_connection = True
        deadline = time.monotonic() + PATIENCE_SECONDS
        while not self.peer.stopping.is_set() and time.monotonic() < deadline:
            try:
                if chunked:
                    self.send_chunk(filler)
                else:
                    self._handler.wfile.write(filler)
            except OSError:
                self.peer.disconnected.set()
                return

    def _head(self, status: int, headers: dict[str, str], body: bytes | None) -> None:
        handler = self._handler
        handler.send_response(status)
        if body is None:
            handler.send_header("Transfer-Encoding", "chunked")
        elif "Content-Length" not in headers:
            handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = PATIENCE_SECONDS
    server: "_Server"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = ReceivedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length),
            received_at=time.monotonic(),
        )
        peer = self.server.peer
        reply = peer.take(request)
        reply(Exchange(self, peer, request))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests read the recorded requests instead


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, peer: "Peer") -> None:
        self.peer = peer
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-reply are what several tests are about


class Peer:
    """A real HTTP server on 127.0.0.1 that answers as it is scripted to."""

    def __init__(self, default: Reply) -> None:
        self.default = default
        self.requests: list[ReceivedRequest] = []
        self.disconnected = threading.Event()
        self.stopping = threading.Event()
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"peer-{self.port}",
            daemon=True,
        )

    def __enter__(self) -> "Peer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(PATIENCE_SECONDS)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._script.extend(replies)

    def take(self, request: ReceivedRequest) -> Reply:
        """Record a request and pick the reply it gets."""
        with self._lock:
            self.requests.append(request)
            return self._script.pop(0) if self._script else self.default

    async def saw_disconnect(self, timeout: float = PATIENCE_SECONDS) -> bool:
        """Wait until a held reply's client has closed the connection."""
        return await asyncio.to_thread(self.disconnected.wait, timeout)


class WebhookPeer(Peer):
    """A web service speaking the http runner's protocol; replies "done"."""

    def __init__(self) -> None:
        super().__init__(result_reply("done"))


class OpenAIPeer(Peer):
    """A chat-completions server; answers with a two-line text by default."""

    DEFAULT_TEXT = "First line of the answer.\nSecond line."

    def __init__(self) -> None:
        super().__init__(completion_reply(self.DEFAULT_TEXT))


# replies of any protocol


def raw_reply(
    body: bytes | str = b"",
    *,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Reply:
    def reply(exchange: Exchange) -> None:
        exchange.send(status, body, content_type=content_type, headers=headers)

    return reply


def json_reply(
    value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Reply:
    return raw_reply(json.dumps(value), status=status, headers=headers)


def status_reply(status: int, *, retry_after: str | None = None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return json_reply({"detail": f"status {status}"}, status=status, headers=headers)


def redirect_reply(status: int, location: str) -> Reply:
    return raw_reply(b"", status=status, headers={"Location": location})


def slow_reply(seconds: float, then: Reply) -> Reply:
    """Wait before answering (or until the peer stops)."""

    def reply(exchange: Exchange) -> None:
        exchange.pause(seconds)
        then(exchange)

    return reply


def stream_reply(content_type: str, *chunks: bytes | str, hold: bool = False) -> Reply:
    """Send the chunks; end the body, or hold the connection open (hold=True)."""

    def reply(exchange: Exchange) -> None:
        exchange.start_stream(content_type)
        for chunk in chunks:
            exchange.send_chunk(chunk)
        if hold:
            exchange.hold_until_disconnect()
        else:
            exchange.end_stream()

    return reply


def endless_reply(
    content_type: str, start: bytes, filler: bytes, *, declared_length: int | None
) -> Reply:
    """A body that never ends: filler is sent until the client hangs up.

    With a declared length, the head announces it and the body is not chunked.
    """

    def reply(exchange: Exchange) -> None:
        if declared_length is None:
            exchange.start_stream(content_type)
            exchange.send_chunk(start)
        else:
            headers = {"Content-Length": str(declared_length)}
            exchange.send(200, start, content_type=content_type, headers=headers)
        exchange.write_until_disconnect(filler, chunked=declared_length is None)

    return reply


def echo_headers_reply(status: int = 401) -> Reply:
    """An error reply that shows the request's headers, Authorization included."""

    def reply(exchange: Exchange) -> None:
        body = {"error": "not allowed", "headers": exchange.request.headers}
        exchange.send(status, json.dumps(body))

    return reply


def http_date(seconds_from_now: float) -> str:
    return formatdate(time.time() + seconds_from_now, usegmt=True)


# replies of the http runner's protocol


def result_reply(output: Any = "done", **fields: Any) -> Reply:
    return json_reply({"output": output, **fields})


def ndjson_reply(*messages: dict[str, Any], hold: bool = False) -> Reply:
    lines = [json.dumps(message) + "\n" for message in messages]
    return stream_reply("application/x-ndjson", *lines, hold=hold)


def sse_event(data: Any, **fields: str) -> str:
    """One server-sent event; data that is not a string is sent as JSON."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = "".join(f"{name}: {value}\n" for name, value in fields.items())
    body = "".join(f"data: {line}\n" for line in text.split("\n"))
    return head + body + "\n"


def sse_reply(*events: str, hold: bool = False) -> Reply:
    return stream_reply("text/event-stream", *events, hold=hold)


# replies of a chat-completions server


def completion_reply(
    text: str,
    *,
    usage: tuple[int, int] | None = (12, 5),
    piece_chars: int = 3,
) -> Reply:
    """Answer with this text, streamed or whole as the request asks.

    Streamed, the text comes in pieces of piece_chars characters, then a chunk
    with the finish reason, the usage chunk (when asked for) and ``[DONE]``.
    """

    def reply(exchange: Exchange) -> None:
        request = exchange.request.json()
        if not request.get("stream"):
            exchange.send(200, json.dumps(completion(text, usage=usage)))
            return

        pieces = [text[i : i + piece_chars] for i in range(0, len(text), piece_chars)]
        events = [sse_event(chunk(role="assistant"))]
        events += [sse_event(chunk(piece)) for piece in pieces]
        events.append(sse_event(chunk(finish_reason="stop")))
        include_usage = (request.get("stream_options") or {}).get("include_usage")
        if usage is not None and include_usage:
            events.append(sse_event(usage_chunk(*usage)))
        events.append(sse_event("[DONE]"))
        stream_reply("text/event-stream", *events)(exchange)

    return reply


def completion(text: str | None, *, usage: tuple[int, int] | None) -> dict[str, Any]:
    """A whole chat-completion reply."""
    reply: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": STAND_IN_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }
    if usage is not None:
        reply["usage"] = _usage(*usage)
    return reply


def chunk(
    content: str | None = None,
    *,
    role: str | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """One chunk of a streamed chat completion."""
    delta = {"role": role} if role else {}
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": STAND_IN_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": STAND_IN_MODEL,
        "choices": [],
        "usage": _usage(prompt_tokens, completion_tokens),
    }


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data

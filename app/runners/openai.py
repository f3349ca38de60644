"""The openai runner: asks a model behind an OpenAI-compatible chat API.

Any server that speaks chat completions will do (vLLM, Ollama, llama.cpp, a
hosted API). Each step is one request, ``POST <base_url>/chat/completions``:

    {"model": <model>,
     "messages": [{"role": "system", "content": <system prompt>},
                  {"role": "user", "content": <the step as text>}],
     ...<parameters>,
     "stream": true, "stream_options": {"include_usage": true}}

The last two keys only when streaming. The system prompt is the profile's
``system_prompt``, else the agent's default from ``app/runners/prompts.py``; the
user message is ``StepContext.prompt()``.

Streamed, the reply is server-sent events until ``data: [DONE]``; the text of
``choices[0].delta.content`` is collected, and each completed line of it is
reported as a progress line as it arrives. Not streamed, the text is
``choices[0].message.content``. A server that answers a streamed request with
one JSON reply is read as not streamed. Either way the output is the text, and
the usage is the reply's ``usage`` (``prompt_tokens``, ``completion_tokens``),
with a cost when ``prices`` has the model; without ``usage`` there is none.

An ``error`` object, in the reply or in a chunk of the stream, fails the run
with its message; so does a stream that ends before ``[DONE]`` and before any
``finish_reason``. Retries, redirects, limits and secrets are handled as
``app/runners/web.py`` describes.
"""

import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx

from app.runners.base import Progress, StepContext, StepResult, Usage
from app.runners.prompts import system_prompt_for
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

RESERVED_PARAMETERS = frozenset({"model", "messages", "stream"})

_DONE = "[DONE]"


@dataclass(frozen=True)
class Price:
    """What a model costs per million tokens, in the operator's currency."""

    input_per_million: float
    output_per_million: float

    def __post_init__(self) -> None:
        for value in (self.input_per_million, self.output_per_million):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError("a price must be a finite number >= 0")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_per_million / 1e6
            + output_tokens * self.output_per_million / 1e6
        )


class _BadReply(Exception):
    """A reply that does not follow the chat-completions protocol."""

    def __init__(self, reason: str, text: str | bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text


class _ReportedError(Exception):
    """The server said, with an ``error`` object, that the request failed."""


class OpenAIRunner:
    """Asks a chat-completions model to carry out each step."""

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        system_prompt: str | None = None,
        parameters: dict[str, Any] | None = None,
        prices: dict[str, Price] | None = None,
        stream: bool = True,
        request_timeout_s: float = 300.0,
        retry: WebRetry = DEFAULT_RETRY,
        max_output_bytes: int,
        max_log_line_bytes: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        check_http_url(base_url)
        if not model:
            raise ValueError("model must not be empty")
        parameters = dict(parameters or {})
        if reserved := sorted(RESERVED_PARAMETERS & parameters.keys()):
            raise ValueError(f"parameters set by the runner itself: {reserved}")
        if not isinstance(parameters.get("stream_options", {}), dict):
            raise ValueError("parameters: stream_options must be a table")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.system_prompt = system_prompt
        self.parameters = parameters
        self.prices = dict(prices or {})
        self.stream = stream
        self.options = WebOptions(
            retry=retry,
            request_timeout_s=request_timeout_s,
            max_output_bytes=max_output_bytes,
            max_log_line_bytes=max_log_line_bytes,
            transport=transport,
        )

    async def run(self, context: StepContext, progress: Progress) -> StepResult:
        """Ask the model to carry out the step; its answer is the output."""
        key = read_api_key(self.api_key_env)
        web = WebClient(self.url, self.options, progress, secrets=[key] if key else [])
        headers = {
            "Accept": "text/event-stream" if self.stream else "application/json",
            **bearer_headers(key),
        }

        async with web.post(
            self._payload(context), headers, error_text=_error_text
        ) as response:
            try:
                if media_type(response) == "text/event-stream":
                    text, usage = await _read_stream(web, web.events(response))
                else:
                    text, usage = await _read_reply(web, response)
                return web.cleaned(StepResult(output=text, usage=self._usage(usage)))
            except _BadReply as exc:
                raise web.failure(_bad_reply_message(web, exc)) from None
            except _ReportedError as exc:
                raise web.failure(f"{web.peer} reported an error: {exc}") from None

    def _payload(self, context: StepContext) -> dict[str, Any]:
        system_prompt = self.system_prompt or system_prompt_for(context.agent)
        payload = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system_prompt},
                {"role": "user", "content": context.prompt()},
            ],
            **self.parameters,
        }
        if self.stream:
            options = payload.get("stream_options") or {}
            payload["stream"] = True
            payload["stream_options"] = {**options, "include_usage": True}
        return payload

    def _usage(self, usage: dict[str, Any] | None) -> Usage | None:
        """The usage the server reported, priced when the model has a price."""
        if usage is None:
            return None
        input_tokens = _token_count(usage, "prompt_tokens")
        output_tokens = _token_count(usage, "completion_tokens")
        price = self.prices.get(self.model)
        cost = price.cost(input_tokens, output_tokens) if price else None
        return Usage(input_tokens, output_tokens, cost)


async def _read_stream(
    web: WebClient, events: AsyncIterator[str]
) -> tuple[str, dict[str, Any] | None]:
    """The text and usage of a streamed reply, its lines logged as they complete."""
    transcript = _Transcript(web.options.max_output_bytes)
    usage = None
    finished = False
    async with aclosing(events):
        async for data in events:
            if data.strip() == _DONE:
                finished = True
                break
            chunk = _json_object(data, "has a chunk that")
            _raise_reported_error(chunk)
            usage = _usage_object(chunk) or usage

            choice = _first_choice(chunk, required=False)
            delta = choice.get("delta") or {}
            finished = finished or bool(choice.get("finish_reason"))
            text = _text(delta) if isinstance(delta, dict) else None
            if text:
                transcript.add(text)
            for line in transcript.completed_lines():
                await _log_line(web, line)

    if not finished:
        raise _BadReply("ended before 'data: [DONE]'")
    await _log_line(web, transcript.rest())
    return transcript.text(), usage


async def _read_reply(
    web: WebClient, response: httpx.Response
) -> tuple[str, dict[str, Any] | None]:
    """The text and usage of a reply that came whole."""
    body = await web.read_body(response)
    reply = _json_object(body, "")
    _raise_reported_error(reply)
    try:
        message = _first_choice(reply, required=True).get("message")
        if not isinstance(message, dict):
            raise _BadReply("has no 'choices[0].message'")
        return _text(message) or "", _usage_object(reply)
    except _BadReply as exc:
        raise _BadReply(exc.reason, body) from None


def _bad_reply_message(web: WebClient, exc: _BadReply) -> str:
    message = f"the reply from {web.peer} {exc.reason}"
    if exc.text is None:
        return message
    return f"{message}: {web.preview(exc.text)}"


async def _log_line(web: WebClient, line: str) -> None:
    if line.strip():
        await web.log(line.rstrip("\r"))


class _Transcript:
    """The model's text as it streams in, cut into the lines it completes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._parts: list[str] = []
        self._size = 0
        self._line: list[str] = []
        self._completed: list[str] = []

    def add(self, text: str) -> None:
        """Take the next piece of text; _BadReply once the text is too large."""
        self._size += len(text.encode("utf-8", errors="replace"))
        if self._size > self.max_bytes:
            raise _BadReply(f"is larger than {self.max_bytes} bytes (max_output_bytes)")
        self._parts.append(text)

        *ends, rest = text.split("\n")
        if ends:
            self._completed.append("".join(self._line) + ends[0])
            self._completed.extend(ends[1:])
            self._line.clear()
        self._line.append(rest)

    def completed_lines(self) -> list[str]:
        """The lines completed since the last call."""
        lines, self._completed = self._completed, []
        return lines

    def rest(self) -> str:
        """The last line, which no newline ended."""
        return "".join(self._line)

    def text(self) -> str:
        return "".join(self._parts)


def _json_object(data: str | bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise _BadReply(f"{what} is not valid JSON".strip(), data) from None
    if not isinstance(value, dict):
        raise _BadReply(f"{what} is not a JSON object".strip(), data)
    return value


def _first_choice(reply: dict[str, Any], *, required: bool) -> dict[str, Any]:
    choices = reply.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    if required or choices not in (None, []):
        raise _BadReply("has no 'choices[0]'")
    return {}


def _text(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise _BadReply("has a 'content' that is not text")
    return content


def _usage_object(reply: dict[str, Any]) -> dict[str, Any] | None:
    usage = reply.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise _BadReply("has a 'usage' that is not a JSON object")
    return usage


def _token_count(usage: dict[str, Any], name: str) -> int:
    count = usage.get(name) or 0
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise _BadReply(f"has a 'usage.{name}' that is not a whole number >= 0")
    return count


def _raise_reported_error(reply: dict[str, Any]) -> None:
    if reply.get("error") is not None:
        raise _ReportedError(_error_message(reply["error"]))


def _error_message(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return error if isinstance(error, str) else json.dumps(error)


def _error_text(body: bytes) -> str | None:
    """The message of the ``error`` object of an error reply, if it has one."""
    try:
        reply = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(reply, dict) and reply.get("error") is not None:
        return _error_message(reply["error"])
    return None

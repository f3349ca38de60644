"""Where the Python API sends its calls: a remote service, or this process.

Both backends take the same calls and give the same types (the service's own
read models), so ``ParallelAgentExecutor`` does not care which one it holds.
``RemoteBackend`` goes through the generated httpx client for requests and a
WebSocket for events; ``LocalBackend`` opens the service's runtime (database,
executor) in this process and calls the execution service directly.
"""

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Protocol, TypeVar

import httpx
import websockets
from parallel_exec_client import Client
from parallel_exec_client.api.executions import (
    executions_cancel,
    executions_create,
    executions_get,
    executions_get_plan,
    executions_list,
    executions_list_runs,
)
from parallel_exec_client.models import ExecutionCreate as ExecutionCreateBody
from parallel_exec_client.models import ExecutionStatus as ExecutionStatusParam
from parallel_exec_client.types import UNSET
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.errors import (
    DatabaseInUse,
    DomainError,
    InvalidRequest,
    ProfilesFileInvalid,
)
from app.events.stream import CLOSE_NORMAL, follow_events
from app.events.types import EventRead
from app.execution.schemas import (
    ExecutionCreate,
    ExecutionPage,
    ExecutionRead,
    PlanRead,
    RunRead,
)
from app.execution.status import ExecutionStatus
from app.runners.python import StepFunction
from app.runtime import Runtime, open_runtime
from app.settings import Settings
from parallel_exec.errors import (
    ParallelExecError,
    RequestRejected,
    ServiceUnreachable,
)

logger = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)
RUNS = TypeAdapter(list[RunRead])
_EVENT_BATCH = TypeAdapter(list[EventRead])  # a message of a batch=true stream
# WebSocket close codes of the service (see app/events/stream.py)
_CLOSE_REFUSALS = {
    4400: (422, "invalid_request"),
    4401: (401, "unauthorized"),
    4404: (404, "execution_not_found"),
}


class Backend(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def submit(
        self, body: dict[str, Any], idempotency_key: str | None
    ) -> ExecutionRead: ...

    async def get(self, execution_id: str) -> ExecutionRead: ...

    async def plan(self, execution_id: str) -> PlanRead: ...

    async def runs(self, execution_id: str) -> list[RunRead]: ...

    async def page(
        self, status: ExecutionStatus | None, limit: int | None, offset: int
    ) -> ExecutionPage: ...

    async def cancel(self, execution_id: str) -> ExecutionRead: ...

    def events(self, execution_id: str, after_seq: int) -> AsyncIterator[EventRead]:
        """Stored events after after_seq, then live ones, each once, to the last."""
        ...


class LocalBackend:
    """The service's planner, executor and database, in this process."""

    def __init__(
        self, settings: Settings, functions: Mapping[str, StepFunction]
    ) -> None:
        self.settings = settings
        self.functions = dict(functions)
        self._stack: AsyncExitStack | None = None
        self._runtime: Runtime | None = None

    async def open(self) -> None:
        stack = AsyncExitStack()
        try:
            runtime = await stack.enter_async_context(
                open_runtime(self.settings, adopt_orphans=False)
            )
        except (DatabaseInUse, ProfilesFileInvalid) as error:
            await stack.aclose()
            raise ParallelExecError(str(error)) from None
        except (OSError, SQLAlchemyError) as error:
            await stack.aclose()
            url = make_url(self.settings.database_url).render_as_string()
            raise ParallelExecError(
                f"cannot open the database {url}: {error}"
            ) from None
        for name, function in self.functions.items():
            runtime.registry.add_function(name, function)
        self._stack, self._runtime = stack, runtime

    async def aclose(self) -> None:
        stack, self._stack, self._runtime = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the in-process service is not open")
        return self._runtime

    async def submit(
        self, body: dict[str, Any], idempotency_key: str | None
    ) -> ExecutionRead:
        request = _checked_request(body)
        read, _ = await self._call(
            self.runtime.service.submit, request, idempotency_key
        )
        return read

    async def get(self, execution_id: str) -> ExecutionRead:
        return await self._call(self.runtime.service.get, execution_id)

    async def plan(self, execution_id: str) -> PlanRead:
        return await self._call(self.runtime.service.plan, execution_id)

    async def runs(self, execution_id: str) -> list[RunRead]:
        return await self._call(self.runtime.service.runs, execution_id)

    async def page(
        self, status: ExecutionStatus | None, limit: int | None, offset: int
    ) -> ExecutionPage:
        return await self._call(
            self.runtime.service.page, status=status, limit=limit, offset=offset
        )

    async def cancel(self, execution_id: str) -> ExecutionRead:
        return await self._call(self.runtime.service.cancel, execution_id)

    async def events(
        self, execution_id: str, after_seq: int
    ) -> AsyncIterator[EventRead]:
        runtime = self.runtime
        # an execution left unfinished by an earlier process goes on here
        if not runtime.executor.owns(execution_id):
            await runtime.executor.take_over(execution_id)
        followed = follow_events(
            runtime.service, runtime.broker, execution_id, after_seq
        )
        try:
            while True:
                try:
                    event = await anext(followed)
                except StopAsyncIteration:
                    return
                except DomainError as error:
                    raise _rejected(error) from None
                yield event
        finally:
            await followed.aclose()

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except DomainError as error:
            raise _rejected(error) from None


class RemoteBackend:
    """A parallel-exec service over HTTP, through the generated client."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        reconnect_timeout_s: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.reconnect_timeout_s = reconnect_timeout_s
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self._client: Client | None = None

    async def open(self) -> None:
        self._client = Client(
            base_url=self.base_url,
            headers=self.headers,
            timeout=httpx.Timeout(self.timeout_s),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.get_async_httpx_client().aclose()

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the remote backend is not open")
        return self._client

    async def submit(
        self, body: dict[str, Any], idempotency_key: str | None
    ) -> ExecutionRead:
        # checked here as the service checks it: the generated model drops keys
        # it does not know, so a misspelt key would otherwise pass unnoticed
        checked = _checked_request(body).model_dump(mode="json", exclude_unset=True)
        if idempotency_key is not None and not idempotency_key.isascii():
            raise _rejected(
                InvalidRequest.on_field(
                    "header.Idempotency-Key", "must be visible ASCII characters"
                )
            )
        response = await self._send(
            executions_create.asyncio_detailed,
            body=ExecutionCreateBody.from_dict(checked),
            idempotency_key=UNSET if idempotency_key is None else idempotency_key,
        )
        return _parsed(response, ExecutionRead)

    async def get(self, execution_id: str) -> ExecutionRead:
        response = await self._send(executions_get.asyncio_detailed, execution_id)
        return _parsed(response, ExecutionRead)

    async def plan(self, execution_id: str) -> PlanRead:
        response = await self._send(executions_get_plan.asyncio_detailed, execution_id)
        return _parsed(response, PlanRead)

    async def runs(self, execution_id: str) -> list[RunRead]:
        response = await self._send(executions_list_runs.asyncio_detailed, execution_id)
        _raise_for_status(response)
        return RUNS.validate_json(response.content)

    async def page(
        self, status: ExecutionStatus | None, limit: int | None, offset: int
    ) -> ExecutionPage:
        response = await self._send(
            executions_list.asyncio_detailed,
            status=UNSET if status is None else ExecutionStatusParam(str(status)),
            limit=UNSET if limit is None else limit,
            offset=offset,
        )
        return _parsed(response, ExecutionPage)

    async def cancel(self, execution_id: str) -> ExecutionRead:
        response = await self._send(executions_cancel.asyncio_detailed, execution_id)
        return _parsed(response, ExecutionRead)

    async def events(
        self, execution_id: str, after_seq: int
    ) -> AsyncIterator[EventRead]:
        """Events over the WebSocket stream, reconnecting where a drop left off.

        A dropped connection (or a service restarting: 1001, 1012) is opened
        again with ``after_seq`` = the last seq yielded, after a short growing
        wait, for up to ``reconnect_timeout_s`` without success. Events at or
        below the last seq yielded are dropped, so none is yielded twice.
        """
        last = after_seq
        failing_since: float | None = None
        delay_s = 0.05
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with websockets.connect(
                    self._stream_url(execution_id, last),
                    additional_headers=self.headers,
                    open_timeout=self.timeout_s,
                    max_size=None,
                ) as connection:
                    async for message in connection:
                        batch = _EVENT_BATCH.validate_json(message)
                        if batch[-1].seq <= last:
                            continue
                        if batch[0].seq > last + 1:
                            break  # a gap: read again from the last seq yielded
                        failing_since, delay_s = None, 0.05
                        for event in batch:
                            if event.seq <= last:
                                continue
                            last = event.seq
                            yield event
                            if event.is_final:
                                return
                    if connection.close_code == CLOSE_NORMAL:
                        return  # the execution has finished; nothing was left
                    _refusal(connection.close_code, connection.close_reason)
            except (OSError, ConnectionClosed, InvalidStatus, TimeoutError) as error:
                if isinstance(error, ConnectionClosed) and error.rcvd is not None:
                    _refusal(error.rcvd.code, error.rcvd.reason)
                if isinstance(error, InvalidStatus):
                    _status_refusal(error.response.status_code)
                logger.debug("stream.dropped", extra={"error": repr(error)})
            now = loop.time()
            failing_since = failing_since if failing_since is not None else now
            if now - failing_since > self.reconnect_timeout_s:
                raise ServiceUnreachable(
                    f"lost the event stream of {execution_id} at seq {last} and "
                    f"could not reconnect for {self.reconnect_timeout_s:g} s"
                )
            await asyncio.sleep(delay_s * (0.5 + random.random()))
            delay_s = min(delay_s * 2, 2.0)

    def _stream_url(self, execution_id: str, after_seq: int) -> str:
        scheme, rest = self.base_url.split("://", 1)
        ws_scheme = "wss" if scheme == "https" else "ws"
        # batch=true: the events ready at once come in one message
        path = f"/executions/{execution_id}/stream?after_seq={after_seq}&batch=true"
        return f"{ws_scheme}://{rest}{path}"

    async def _send(
        self, operation: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return await operation(*args, client=self.client, **kwargs)
        except httpx.TransportError as error:
            raise ServiceUnreachable(
                f"cannot reach the service at {self.base_url}: {error!r}"
            ) from error


def _parsed(response: Any, model: type[Model]) -> Model:
    _raise_for_status(response)
    return model.model_validate_json(response.content)


def _raise_for_status(response: Any) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.parsed.error if response.parsed is not None else None
    except AttributeError:
        error = None
    if error is None:
        raise RequestRejected(
            int(response.status_code),
            "http_error",
            f"the service answered {int(response.status_code)}: "
            f"{response.content[:200].decode(errors='replace')}",
        )
    details = error.details.to_dict() if error.details else {}
    raise RequestRejected(int(response.status_code), error.code, error.message, details)


def _refusal(code: int | None, reason: str) -> None:
    """Raise for a close code that means reconnecting would not help."""
    if code in _CLOSE_REFUSALS:
        status, error_code = _CLOSE_REFUSALS[code]
        raise RequestRejected(status, error_code, reason or error_code)


def _status_refusal(status: int) -> None:
    if status in (401, 403, 404):
        raise RequestRejected(
            status, "stream_refused", f"the service answered {status}"
        )


def _rejected(error: DomainError) -> RequestRejected:
    return RequestRejected(error.status_code, error.code, error.message, error.details)


def _checked_request(body: dict[str, Any]) -> ExecutionCreate:
    try:
        return ExecutionCreate.model_validate(body)
    except ValidationError as error:
        raise _invalid(error) from None


def _invalid(error: ValidationError) -> RequestRejected:
    problems = [
        {"field": ".".join(["body", *map(str, item["loc"])]), "problem": item["msg"]}
        for item in error.errors()
    ]
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    return RequestRejected(
        422, "invalid_request", f"invalid request: {summary}", {"errors": problems}
    )

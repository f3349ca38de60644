"""Execution routes: submit, list, read, cancel, and the live event stream."""

from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    Header,
    Query,
    Request,
    Response,
    WebSocket,
)
from fastapi.responses import PlainTextResponse

from app.api.deps import Service, require_api_key
from app.errors import InvalidRequest
from app.events.stream import stream_events
from app.execution.schemas import (
    ErrorBody,
    EventPage,
    ExecutionCreate,
    ExecutionPage,
    ExecutionRead,
    PlanRead,
    RunRead,
    StateEntryRead,
)
from app.execution.status import ExecutionStatus

MAX_INT32 = 2**31 - 1
ERRORS = {
    401: {"model": ErrorBody, "description": "Missing or wrong API key."},
    404: {"model": ErrorBody, "description": "No such execution."},
    422: {"model": ErrorBody, "description": "The request is not valid."},
}

router = APIRouter(
    prefix="/executions",
    tags=["executions"],
    dependencies=[Depends(require_api_key)],
    responses={401: ERRORS[401], 422: ERRORS[422]},
)


@router.post(
    "",
    operation_id="executions_create",
    status_code=202,
    response_model=ExecutionRead,
    responses={
        201: {
            "model": ExecutionRead,
            "description": "Dry run: planned and stored.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        202: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        200: {
            "model": ExecutionRead,
            "description": "An earlier request with the same Idempotency-Key and "
            "the same body created this execution; nothing new was started.",
        },
        409: {
            "model": ErrorBody,
            "description": "The Idempotency-Key was used with a different body.",
        },
        413: {"model": ErrorBody, "description": "Body or plan too large."},
        503: {"model": ErrorBody, "description": "The service is shutting down."},
    },
)
async def create_execution(
    body: ExecutionCreate,
    service: Service,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Send the same key to retry a submit safely: the first "
            "execution made with it is returned instead of a new one.",
        ),
    ] = None,
) -> Any:
    """Plan a task and run it in the background (202), or only plan it (201).

    With ``Accept: text/plain`` the answer is the plan as a readable listing.
    """
    if len(request.headers.getlist("idempotency-key")) > 1:
        raise InvalidRequest.on_field(
            "header.Idempotency-Key", "send one Idempotency-Key header, not several"
        )
    execution, replayed = await service.submit(body, idempotency_key)
    status_code = 201 if execution.dry_run else 202
    headers = {}
    if replayed:
        status_code = 200
        headers["Idempotent-Replayed"] = "true"
    if _wants_text(request) and execution.plan is not None:
        text = f"execution {execution.id} {execution.status.value}\n"
        return PlainTextResponse(
            text + execution.plan.description + "\n", status_code, headers=headers
        )
    response.status_code = status_code
    response.headers.update(headers)
    return execution


def _wants_text(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "text/plain" in accept and "application/json" not in accept


@router.get("", operation_id="executions_list")
async def list_executions(
    service: Service,
    status: ExecutionStatus | None = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_INT32)] = 0,
) -> ExecutionPage:
    """Executions, newest first, optionally with one status."""
    return await service.page(status=status, limit=limit, offset=offset)


@router.get(
    "/{execution_id}", operation_id="executions_get", responses={404: ERRORS[404]}
)
async def get_execution(execution_id: str, service: Service) -> ExecutionRead:
    """One execution with its result figures once it has finished."""
    return await service.get(execution_id)


@router.get(
    "/{execution_id}/plan",
    operation_id="executions_get_plan",
    responses={404: ERRORS[404]},
)
async def get_plan(execution_id: str, service: Service) -> PlanRead:
    """The execution's plan: steps with their status, phases, estimates."""
    return await service.plan(execution_id)


@router.get(
    "/{execution_id}/runs",
    operation_id="executions_list_runs",
    responses={404: ERRORS[404]},
)
async def list_runs(execution_id: str, service: Service) -> list[RunRead]:
    """Every run of the execution's steps, in start order."""
    return await service.runs(execution_id)


@router.get(
    "/{execution_id}/state",
    operation_id="executions_get_state",
    responses={404: ERRORS[404]},
)
async def get_state(execution_id: str, service: Service) -> list[StateEntryRead]:
    """The execution's shared state: each key's value, version and last writer."""
    return await service.state(execution_id)


@router.get(
    "/{execution_id}/events",
    operation_id="executions_list_events",
    responses={404: ERRORS[404]},
)
async def list_events(
    execution_id: str,
    service: Service,
    after_seq: Annotated[int, Query(ge=0, le=MAX_INT32)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
) -> EventPage:
    """Stored events with seq greater than after_seq, in order."""
    return await service.events(execution_id, after_seq=after_seq, limit=limit)


@router.post(
    "/{execution_id}/cancel",
    operation_id="executions_cancel",
    responses={
        404: ERRORS[404],
        409: {"model": ErrorBody, "description": "The execution has finished."},
    },
)
async def cancel_execution(execution_id: str, service: Service) -> ExecutionRead:
    """Stop a running execution: running steps are cancelled, the rest skipped."""
    return await service.cancel(execution_id)


stream_router = APIRouter()


@stream_router.websocket("/executions/{execution_id}/stream")
async def stream(websocket: WebSocket, execution_id: str) -> None:
    """Stored events after after_seq, then live ones, closed after the last."""
    await stream_events(websocket, execution_id)

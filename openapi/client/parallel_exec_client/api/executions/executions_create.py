from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.execution_create import ExecutionCreate
from ...models.execution_read import ExecutionRead
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: ExecutionCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/executions",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | ExecutionRead | None:
    if response.status_code == 200:
        response_200 = ExecutionRead.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = ExecutionRead.from_dict(response.json())

        return response_201

    if response.status_code == 202:
        response_202 = ExecutionRead.from_dict(response.json())

        return response_202

    if response.status_code == 401:
        response_401 = ErrorBody.from_dict(response.json())

        return response_401

    if response.status_code == 409:
        response_409 = ErrorBody.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = ErrorBody.from_dict(response.json())

        return response_413

    if response.status_code == 422:
        response_422 = ErrorBody.from_dict(response.json())

        return response_422

    if response.status_code == 503:
        response_503 = ErrorBody.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ErrorBody | ExecutionRead]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: ExecutionCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ErrorBody | ExecutionRead]:
    """Create Execution

     Plan a task and run it in the background (202), or only plan it (201).

    With ``Accept: text/plain`` the answer is the plan as a readable listing.

    Args:
        idempotency_key (None | str | Unset): Send the same key to retry a submit safely: the
            first execution made with it is returned instead of a new one.
        body (ExecutionCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | ExecutionRead]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: ExecutionCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> ErrorBody | ExecutionRead | None:
    """Create Execution

     Plan a task and run it in the background (202), or only plan it (201).

    With ``Accept: text/plain`` the answer is the plan as a readable listing.

    Args:
        idempotency_key (None | str | Unset): Send the same key to retry a submit safely: the
            first execution made with it is returned instead of a new one.
        body (ExecutionCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | ExecutionRead
    """

    return sync_detailed(
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: ExecutionCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ErrorBody | ExecutionRead]:
    """Create Execution

     Plan a task and run it in the background (202), or only plan it (201).

    With ``Accept: text/plain`` the answer is the plan as a readable listing.

    Args:
        idempotency_key (None | str | Unset): Send the same key to retry a submit safely: the
            first execution made with it is returned instead of a new one.
        body (ExecutionCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | ExecutionRead]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: ExecutionCreate,
    idempotency_key: None | str | Unset = UNSET,
) -> ErrorBody | ExecutionRead | None:
    """Create Execution

     Plan a task and run it in the background (202), or only plan it (201).

    With ``Accept: text/plain`` the answer is the plan as a readable listing.

    Args:
        idempotency_key (None | str | Unset): Send the same key to retry a submit safely: the
            first execution made with it is returned instead of a new one.
        body (ExecutionCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | ExecutionRead
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed

"""Idempotency-Key: a repeated submit returns the execution the first one created.

The key is stored with a hash of the request in the same transaction as the
execution, so a key either names a stored execution or nothing. The same key
with the same request (compared after the server's defaults are filled in, so
key order, spacing and spelled-out defaults do not matter) returns that
execution; with a different request it is a conflict. Keys expire after
``idempotency_key_ttl_seconds``; the heartbeat deletes expired ones, and an
expired key may be used again.
"""

import hashlib
import json
import re
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import IdempotencyConflict, InvalidRequest
from app.execution.schemas import ExecutionConfig, ExecutionCreate
from app.storage.models import IdempotencyKeyRow
from app.storage.repository import utcnow

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII, no spaces


def checked_key(key: str, max_chars: int) -> str:
    if not 1 <= len(key) <= max_chars or not _KEY.match(key):
        raise InvalidRequest.on_field(
            f"header.{HEADER}",
            f"must be 1 to {max_chars} visible ASCII characters without spaces",
            limit=max_chars,
        )
    return key


def request_hash(request: ExecutionCreate, config: ExecutionConfig) -> str:
    """The request with its config as resolved (every server default filled in)."""
    resolved = request.model_copy(update={"config": config})
    canonical = json.dumps(
        resolved.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def find(session: AsyncSession, key: str, digest: str) -> str | None:
    """The execution an unexpired key created with this request, or None.

    The same key with another request is a conflict.
    """
    row = await session.get(IdempotencyKeyRow, key)
    if row is None or row.expires_at <= utcnow():
        return None
    if row.request_hash != digest:
        raise IdempotencyConflict(
            f"{HEADER} '{key}' was first used with a different request; send that "
            "same request again, or use a new key for a new request",
            idempotency_key=key,
            execution_id=row.execution_id,
        )
    return row.execution_id


async def store(
    session: AsyncSession, key: str, digest: str, execution_id: str, ttl_s: float
) -> None:
    """Record the key for a new execution, replacing an expired use of it."""
    now = utcnow()
    await session.execute(
        delete(IdempotencyKeyRow).where(
            IdempotencyKeyRow.key == key, IdempotencyKeyRow.expires_at <= now
        )
    )
    session.add(
        IdempotencyKeyRow(
            key=key,
            request_hash=digest,
            execution_id=execution_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )


async def purge_expired(session: AsyncSession) -> int:
    result = await session.execute(
        delete(IdempotencyKeyRow).where(IdempotencyKeyRow.expires_at <= utcnow())
    )
    return result.rowcount or 0

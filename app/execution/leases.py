"""Which process runs which execution: leases in the executions table.

An unfinished execution is owned by one process, named in ``owner``, until
``lease_expires_at``. The owner renews its leases every heartbeat; a process that
finds an execution with no owner, or with a lease that has run out, takes it over
with one conditional UPDATE, so that two processes can never both win. Every
event the owner appends checks that it still owns the execution (see
``ExecutionRepository.append_event``), so an owner that lost its lease, say after
a long pause, cannot write another line and stops.

An owner on this machine whose process is gone (or a previous life of this very
process id) is known to be dead: its executions are taken over at once instead
of after the lease runs out. On SQLite only one process may use the file, so
every unfinished execution there belongs to whoever holds it.
"""

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, and_, or_, select, update

from app.execution.status import ExecutionStatus
from app.storage.database import Database
from app.storage.models import ExecutionRow
from app.storage.repository import utcnow

UNFINISHED = (ExecutionStatus.accepted.value, ExecutionStatus.running.value)


def new_owner_id() -> str:
    """This process as an owner: host, pid and a token unique to this start."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def owner_is_dead(owner: str, me: str) -> bool:
    """True when owner is a process of this machine that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text, _, token = rest.partition(":")
    my_host, _, my_rest = me.partition(":")
    my_pid, _, my_token = my_rest.partition(":")
    if host != my_host or not pid_text.isdigit():
        return False
    if pid_text == my_pid:
        return token != my_token  # an earlier life of this process id
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # a process of another user has that id now
    return _is_zombie(int(pid_text))


def _is_zombie(pid: int) -> bool:
    """A process that has exited but is not yet reaped by its parent is dead too."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


@dataclass(frozen=True)
class Renewal:
    """What a heartbeat learned: the executions still held, and cancels asked."""

    held: set[str]
    cancels: dict[str, str]


class Leases:
    def __init__(
        self, database: Database, owner: str, lease_seconds: float, *, sole: bool
    ) -> None:
        self.database = database
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.sole = sole  # this process holds the database alone (SQLite)

    def expiry(self) -> datetime:
        return utcnow() + self.lease

    async def renew(self) -> Renewal:
        """Extend every lease this process holds on an unfinished execution."""
        async with self.database.transaction() as session:
            rows = await session.execute(
                update(ExecutionRow)
                .where(
                    ExecutionRow.owner == self.owner,
                    ExecutionRow.status.in_(UNFINISHED),
                )
                .values(lease_expires_at=self.expiry())
                .returning(ExecutionRow.id, ExecutionRow.cancel_requested)
                .execution_options(synchronize_session=False)
            )
            held = rows.all()
        return Renewal(
            held={row.id for row in held},
            cancels={
                row.id: row.cancel_requested for row in held if row.cancel_requested
            },
        )

    async def holder(self, execution_id: str) -> str | None:
        """The owner the database names for an unfinished execution now."""
        async with self.database.reader() as session:
            return await session.scalar(
                select(ExecutionRow.owner).where(
                    ExecutionRow.id == execution_id,
                    ExecutionRow.status.in_(UNFINISHED),
                )
            )

    async def orphans(self) -> Sequence[str]:
        """Unfinished executions whose owner is gone or whose lease ran out."""
        async with self.database.reader() as session:
            rows = await session.execute(
                select(
                    ExecutionRow.id, ExecutionRow.owner, ExecutionRow.lease_expires_at
                )
                .where(
                    ExecutionRow.status.in_(UNFINISHED),
                    or_(ExecutionRow.owner.is_(None), ExecutionRow.owner != self.owner),
                )
                .order_by(ExecutionRow.created_at)
            )
            found = rows.all()
        return [row.id for row in found if self._free(row.owner, row.lease_expires_at)]

    def _free(self, owner: str | None, expires: datetime | None) -> bool:
        """Whether an execution so held may be taken over: no live owner holds it."""
        return (
            self.sole
            or owner is None
            or expires is None
            or expires < utcnow()
            or owner_is_dead(owner, self.owner)
        )

    async def take(self, execution_id: str) -> str | None:
        """Take an orphan over; the previous owner's name, or None if it was not free.

        The UPDATE only matches while the row is as it was just read, so of
        several processes trying at once exactly one succeeds.
        """
        async with self.database.transaction() as session:
            row = await session.get(ExecutionRow, execution_id)
            if row is None or row.status not in UNFINISHED or row.owner == self.owner:
                return None
            previous = row.owner
            if not self._free(previous, row.lease_expires_at):
                return None
            claimed = await session.execute(
                update(ExecutionRow)
                .where(
                    ExecutionRow.id == execution_id,
                    ExecutionRow.status.in_(UNFINISHED),
                    _same_owner(previous, row.lease_expires_at),
                )
                .values(owner=self.owner, lease_expires_at=self.expiry())
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                return None
        return previous or "nobody"

    async def release(self, execution_id: str) -> None:
        """Give an execution up so that the next process resumes it at once."""
        async with self.database.transaction() as session:
            await session.execute(
                update(ExecutionRow)
                .where(
                    ExecutionRow.id == execution_id, ExecutionRow.owner == self.owner
                )
                .values(owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )

    async def ask_cancel(self, execution_id: str, reason: str) -> None:
        """Leave a cancel for the owning process to find on its next heartbeat."""
        async with self.database.transaction() as session:
            await session.execute(
                update(ExecutionRow)
                .where(
                    ExecutionRow.id == execution_id,
                    ExecutionRow.status.in_(UNFINISHED),
                    ExecutionRow.cancel_requested.is_(None),
                )
                .values(cancel_requested=reason)
                .execution_options(synchronize_session=False)
            )


def _same_owner(owner: str | None, expires: datetime | None) -> ColumnElement[bool]:
    by_owner = (
        ExecutionRow.owner.is_(None) if owner is None else ExecutionRow.owner == owner
    )
    by_expiry = (
        ExecutionRow.lease_expires_at.is_(None)
        if expires is None
        else ExecutionRow.lease_expires_at == expires
    )
    return and_(by_owner, by_expiry)

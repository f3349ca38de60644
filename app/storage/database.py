"""The database: engine, sessions, and the one place a unit of work commits."""

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.errors import DatabaseInUse

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Database:
    """Owns the engine; ``transaction()`` commits or rolls back one unit of work.

    SQLite allows one writer at a time. Writes from this process are serialised by
    an asyncio lock so that they queue here instead of failing with "database is
    locked"; reads use their own connections and see the last commit (WAL).
    """

    def __init__(
        self, url: str, *, echo: bool = False, idle_transaction_seconds: float = 10.0
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _create_engine(url, echo, idle_transaction_seconds)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.batches = (
            SqliteBatches(url, self._write_lock)
            if self._write_lock is not None and _in_file(url)
            else None
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed on success and rolled back on error."""
        if self._write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self.sessions() as session, session.begin():
            yield session

    async def write(self, apply: Callable[[Connection], T]) -> T:
        """Carry out ``apply``, which only writes, in a transaction of its own."""
        async with self.transaction() as session:
            connection = await session.connection()
            return await connection.run_sync(apply)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; nothing it does is committed."""
        async with self.sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.batches is not None:
            await self.batches.close()
        await self.engine.dispose()


class Batched(Protocol):
    """Writes that can be carried out alone or together with others of their kind."""

    def write(self, connection: Connection) -> None: ...

    @staticmethod
    def write_together(connection: Connection, items: list[Any]) -> None: ...

    def written(self) -> None:
        """Told once committed, in commit order, before its writer is."""


class SqliteBatches:
    """Writes queued changes to a SQLite file together, from a thread of its own.

    Each statement through the asynchronous driver costs a few trips between
    the event loop and the driver's thread; a batch costs one. The changes
    queued while one batch is written go together in the next: one
    transaction, and as few statements as their kinds need. If any of them
    fails, the batch is written again one change at a time, each in a savepoint
    of its own, so that only the one that failed is rolled back. Readers see a
    batch's changes all at once, never part of one. The batch holds the
    process's write lock while it is written, as every transaction does.
    """

    def __init__(self, url: str, write_lock: asyncio.Lock) -> None:
        self.engine = _create_sync_sqlite_engine(url)
        self._write_lock = write_lock
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="px-sqlite-writes")
        self._queue: list[tuple[Batched, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def write(self, item: Batched) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_queued())
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            # the change stays in its batch: the cancel is passed on once it is
            # written (asyncio.wait, unlike await, leaves the future alone)
            if not future.done():
                await asyncio.wait([future])
            raise

    async def close(self) -> None:
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
        self._thread.shutdown(wait=True)
        self.engine.dispose()

    async def _write_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue, []
            items = [item for item, _ in batch]
            async with self._write_lock:
                try:
                    failures = await loop.run_in_executor(
                        self._thread, self._write_batch, items
                    )
                except asyncio.CancelledError:  # the loop is closing: none waits
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as error:  # the commit itself failed
                    failures = [error] * len(batch)
                # told under the lock, so in commit order
                for (item, future), failure in zip(batch, failures, strict=True):
                    if failure is None:
                        item.written()
                    if future.cancelled():
                        continue
                    if failure is None:
                        future.set_result(None)
                    else:
                        future.set_exception(failure)

    def _write_batch(self, items: list[Batched]) -> list[BaseException | None]:
        with suppress(Exception), self.engine.begin() as connection:
            type(items[0]).write_together(connection, items)
            return [None] * len(items)
        failures: list[BaseException | None] = []
        with self.engine.begin() as connection:
            for item in items:
                try:
                    with connection.begin_nested():
                        item.write(connection)
                    failures.append(None)
                except Exception as error:
                    failures.append(error)
        return failures


class SqliteFileLock:
    """Keeps a SQLite database to this process: a second one is refused at start.

    SQLite serialises writers with a file lock that one process holds at a time;
    this service also coordinates its own writes in memory (the write lock above)
    and treats every unfinished execution in the file as its own to resume. A
    second process would fight over the file and resume executions that are
    still running, so it is stopped before it opens the database.

    The lock is an advisory ``flock`` on the database file itself, so it holds
    however the file is named (a symbolic or a hard link); the kernel drops it
    when the process ends, however it ends. ``flock`` and the POSIX locks SQLite
    takes do not interfere on Linux, but closing any descriptor of the file
    drops this process's POSIX locks on it: the lock's descriptor is closed only
    after the engine is disposed. The holder's pid is written beside the file,
    for the refusal message.
    """

    def __init__(self, url: str) -> None:
        database = make_url(url).database
        self.path = Path(database).resolve() if database and _in_file(url) else None
        self._file: Any = None

    def acquire(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "ab")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DatabaseInUse(
                f"the SQLite database {self.path} is in use by another "
                f"parallel-exec process (pid {self._holder()}); SQLite serves one "
                "process only: stop that one, give this one its own "
                "PX_DATABASE_URL, or use PostgreSQL to run several processes"
            ) from None
        self._pid_file.write_text(str(os.getpid()))
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None

    @property
    def _pid_file(self) -> Path:
        assert self.path is not None
        return self.path.with_name(self.path.name + ".pid")

    def _holder(self) -> str:
        try:
            return self._pid_file.read_text().strip() or "unknown"
        except OSError:
            return "unknown"


def _in_file(url: str) -> bool:
    database = make_url(url).database
    return bool(database) and database != ":memory:"


def _create_sync_sqlite_engine(url: str) -> Engine:
    """The same file through the standard library's driver, for batched writes.

    The driver is left in autocommit and each transaction is begun here with
    BEGIN IMMEDIATE, so that savepoints work and the write lock is taken at once.
    """
    sync_url = make_url(url).set(drivername="sqlite")
    engine = create_engine(
        sync_url,
        connect_args={"isolation_level": None, "check_same_thread": False},
    )
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create_engine(
    url: str, echo: bool, idle_transaction_seconds: float
) -> AsyncEngine:
    if not url.startswith("sqlite"):
        # a process stopped mid-transaction (SIGSTOP, a stall) would otherwise
        # hold its row locks, and block whoever takes its executions over
        timeout_ms = str(round(idle_transaction_seconds * 1000))
        server_settings = {"idle_in_transaction_session_timeout": timeout_ms}
        return create_async_engine(
            url,
            echo=echo,
            pool_pre_ping=True,
            connect_args={"server_settings": server_settings},
        )

    database = make_url(url).database
    if database and _in_file(url):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()

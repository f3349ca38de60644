"""Everything the service runs on, opened and closed in the right order.

``open_runtime`` is used by the web app's lifespan and by anything that runs
executions in-process without HTTP (benchmarks, the Python API): it takes the
SQLite file lock, migrates, wires the executor, resumes executions no live
process owns, and keeps the heartbeat (and on PostgreSQL the listener) going.
Closing it drains and hands back running executions (see ``Executor.shutdown``).
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.events.broker import Broker
from app.events.listener import Listener
from app.execution.executor import Executor
from app.execution.leases import Leases, new_owner_id
from app.execution.recorder import Recorder
from app.execution.service import ExecutionService
from app.runners.profiles import ProfileRegistry
from app.settings import Settings
from app.storage import migrate
from app.storage.database import Database, SqliteFileLock

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    broker: Broker
    registry: ProfileRegistry
    executor: Executor
    service: ExecutionService


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, adopt_orphans: bool = True
) -> AsyncIterator[Runtime]:
    """Everything wired and running; adopt_orphans=False resumes only on request.

    Without adopting orphans (the Python API in-process), an execution another
    process left unfinished is resumed only through ``Executor.take_over``.
    """
    registry = ProfileRegistry.load(settings)
    file_lock = SqliteFileLock(settings.database_url) if settings.is_sqlite else None
    if file_lock is not None:
        file_lock.acquire()
    database = Database(
        settings.database_url,
        echo=settings.database_echo,
        idle_transaction_seconds=settings.database_idle_transaction_seconds,
    )
    try:
        await migrate.upgrade(database)
        owner = new_owner_id()
        broker = Broker(settings.live_buffer_events)
        recorder = Recorder(database, broker, origin=owner)
        leases = Leases(
            database, owner, settings.lease_seconds, sole=database.is_sqlite
        )
        executor = Executor(
            recorder, registry, settings, leases, adopt_orphans=adopt_orphans
        )
        service = ExecutionService(database, recorder, executor, registry, settings)
        background = [asyncio.create_task(_beat(executor, service), name="heartbeat")]
        if not database.is_sqlite:
            listener = Listener(
                database,
                broker,
                owner,
                on_cancel=service.cancel_noticed,
                check_seconds=settings.heartbeat_seconds,
            )
            background.append(asyncio.create_task(listener.run(), name="listener"))
        try:
            resumed = await executor.take_over_orphans() if adopt_orphans else []
            logger.info(
                "service.started",
                extra={
                    "database": database.engine.url.render_as_string(),
                    "owner": owner,
                    "resumed": len(resumed),
                },
            )
            yield Runtime(settings, database, broker, registry, executor, service)
        finally:
            await executor.shutdown(
                settings.shutdown_grace_seconds, settings.cancel_wait_seconds
            )
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
    finally:
        await database.dispose()
        if file_lock is not None:
            file_lock.release()
        logger.info("service.stopped")


async def _beat(executor: Executor, service: ExecutionService) -> None:
    """Every heartbeat: renew leases, take over orphans, drop expired keys."""
    while True:
        await asyncio.sleep(executor.settings.heartbeat_seconds)
        try:
            await executor.heartbeat()
            await service.purge_idempotency_keys()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("heartbeat.failed")

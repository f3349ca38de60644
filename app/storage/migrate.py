"""Bring a database to the newest schema with the project's Alembic migrations."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from app.storage.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (the newest by default)."""
    await _run(database, lambda config: command.upgrade(config, revision))


async def downgrade(database: Database, revision: str) -> None:
    """Migrate the database down to ``revision`` ("base" removes every table)."""
    await _run(database, lambda config: command.downgrade(config, revision))


async def _run(database: Database, action: Any) -> None:
    def run_sync(connection: Any) -> None:
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        action(config)

    async with database.engine.connect() as connection:
        if not database.is_sqlite:
            async with connection.begin():
                await connection.run_sync(run_sync)
            return

        # SQLite alters a table by copying it into a new one and dropping the
        # old: with foreign keys enforced, that drop would cascade and delete
        # every dependent row. The pragma only works outside a transaction.
        await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await connection.commit()
        # Python's sqlite3 runs CREATE and ALTER outside any transaction of its
        # own, so a migration cut off half-way (Ctrl-C, a kill) would leave its
        # tables without the version row; one explicit transaction keeps it
        # all or nothing
        own = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await own.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            await own.run_sync(run_sync)
            await _check_foreign_keys(own)
        except BaseException:
            await own.exec_driver_sql("ROLLBACK")
            raise
        else:
            await own.exec_driver_sql("COMMIT")
        finally:
            await own.exec_driver_sql("PRAGMA foreign_keys=ON")


async def _check_foreign_keys(connection: Any) -> None:
    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
    if broken:
        raise RuntimeError(f"migration left rows with broken references: {broken[:5]}")

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
        if database.is_sqlite:
            # SQLite alters a table by copying it into a new one and dropping the
            # old: with foreign keys enforced, that drop would cascade and delete
            # every dependent row. The pragma only works outside a transaction.
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
        try:
            async with connection.begin():
                await connection.run_sync(run_sync)
                if database.is_sqlite:
                    await _check_foreign_keys(connection)
        finally:
            if database.is_sqlite:
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()


async def _check_foreign_keys(connection: Any) -> None:
    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
    if broken:
        raise RuntimeError(f"migration left rows with broken references: {broken[:5]}")

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.storage import migrate
from app.storage.database import Database
from app.storage.models import Base


def _diff(connection) -> list:  # type: ignore[no-untyped-def]
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def _tables(connection) -> set[str]:  # type: ignore[no-untyped-def]
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


class TestMigrations:
    async def test_upgrading_an_empty_database_yields_exactly_the_models(
        self, database_url: str
    ) -> None:
        database = Database(database_url)
        await migrate.downgrade(database, "base")
        await migrate.upgrade(database)
        async with database.engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
        await database.dispose()

    async def test_downgrade_and_upgrade_round_trip(self, database_url: str) -> None:
        database = Database(database_url)
        await migrate.upgrade(database)
        await migrate.downgrade(database, "base")
        async with database.engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()
        await migrate.upgrade(database)
        async with database.engine.connect() as connection:
            assert await connection.run_sync(_tables) == set(Base.metadata.tables)
        await database.dispose()

"""The Alembic migrations: each revision up and down, on empty and populated data.

The revisions are read from the script directory, so a new migration is walked
by every test here without a change to this file.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, inspect, select

from app.storage import migrate
from app.storage.database import Database
from app.storage.models import Base


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    return [each.revision for each in reversed(list(scripts().walk_revisions()))]


def _diff(connection) -> list:  # type: ignore[no-untyped-def]
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def _tables(connection) -> set[str]:  # type: ignore[no-untyped-def]
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _current(connection) -> str | None:  # type: ignore[no-untyped-def]
    return MigrationContext.configure(connection).get_current_revision()


def _schema(connection) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Tables with their columns, keys, indexes and constraints, in a stable order."""
    inspector = inspect(connection)
    schema = {}
    for table in sorted(_tables(connection)):
        columns = inspector.get_columns(table)
        schema[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"]) for c in columns
            ),
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    fk["options"].get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
        }
    return schema


async def inspected(database: Database, look: Any) -> Any:
    async with database.engine.connect() as connection:
        return await connection.run_sync(look)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The test's database, emptied of every table before and after."""
    database = Database(database_url)
    await migrate.downgrade(database, "base")
    yield database
    await migrate.downgrade(database, "base")
    await database.dispose()


class TestMigrations:
    def test_the_revisions_form_one_line_from_the_first(self) -> None:
        ids = revisions()
        assert ids[:2] == ["0001", "0002"]
        assert scripts().get_heads() == [ids[-1]]
        for previous, revision in zip([None, *ids[:-1]], ids, strict=True):
            assert scripts().get_revision(revision).down_revision == previous

    async def test_upgrading_an_empty_database_yields_exactly_the_models(
        self, database: Database
    ) -> None:
        await migrate.upgrade(database)
        assert await inspected(database, _diff) == []

    async def test_downgrade_and_upgrade_round_trip(self, database: Database) -> None:
        await migrate.upgrade(database)
        await migrate.downgrade(database, "base")
        assert await inspected(database, _tables) == set()
        await migrate.upgrade(database)
        assert await inspected(database, _tables) == set(Base.metadata.tables)

    async def test_each_revision_steps_down_to_the_schema_it_came_from(
        self, database: Database
    ) -> None:
        ids = revisions()
        schemas = [await inspected(database, _schema)]
        for previous, revision in zip([None, *ids[:-1]], ids, strict=True):
            await migrate.upgrade(database, revision)
            assert await inspected(database, _current) == revision
            schemas.append(await inspected(database, _schema))

            # one down and up again: the downgrade undoes all the upgrade did
            await migrate.downgrade(database, previous or "base")
            assert await inspected(database, _current) == previous
            assert await inspected(database, _schema) == schemas[-2], revision
            await migrate.upgrade(database, revision)
            assert await inspected(database, _schema) == schemas[-1], revision
        assert await inspected(database, _diff) == []

        for index in reversed(range(len(ids))):
            target = ids[index - 1] if index else None
            await migrate.downgrade(database, target or "base")
            assert await inspected(database, _current) == target
            assert await inspected(database, _schema) == schemas[index], target


# rows of every table of the first revision, written with that revision's schema

T0 = datetime(2026, 12, 4, 9, 30, 0, 123456, tzinfo=UTC)
DONE = "5b0f6c1e-6d3c-4f7a-9a51-0c7a3f1d2e01"
RUNNING = "7e2d9a40-1b8f-4c63-8d0e-4f5a6b7c8d02"
PLANNED = "9c4b1d2e-3f5a-4b6c-8d7e-9f0a1b2c3d03"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def execution(id: str, task: str, status: str, **fields: Any) -> dict[str, Any]:
    row = {
        "id": id,
        "task": task,
        "task_type": "implement",
        "mode": "auto",
        "profile": "simulated",
        "config": {"parallel": True, "max_parallel": 4, "fail_fast": True},
        "plan_figures": {"phases": [["explore"], ["build"]], "critical_path_ms": 9},
        "status": status,
        "dry_run": False,
        "reason": None,
        "result": None,
        "last_seq": 0,
        "created_at": at(0),
        "started_at": None,
        "finished_at": None,
    }
    return row | fields


def plan_step(execution_id: str, step_id: str, position: int, **fields: Any) -> dict:
    row = {
        "execution_id": execution_id,
        "step_id": step_id,
        "position": position,
        "agent": "builder",
        "title": f"Step {step_id} – with “quotes”",
        "instructions": "Write the code.\nThen the tests.",
        "depends_on": [],
        "estimate_ms": 4000,
        "timeout_s": None,
        "phase": position,
        "status": "pending",
    }
    return row | fields


def run(id: str, execution_id: str, step_id: str, attempt: int, **fields: Any) -> dict:
    row = {
        "id": id,
        "execution_id": execution_id,
        "step_id": step_id,
        "attempt": attempt,
        "agent": "builder",
        "runner": "command",
        "status": "running",
        "started_at": at(1 + attempt),
        "finished_at": None,
        "duration_ms": None,
        "output": None,
        "error": None,
        "details": None,
    }
    return row | fields


def event(
    execution_id: str, seq: int, type: str, step_id: str | None, **data: Any
) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "seq": seq,
        "type": type,
        "step_id": step_id,
        "data": data,
        "created_at": at(seq + 0.25),
    }


FIRST_REVISION_ROWS: dict[str, list[dict[str, Any]]] = {
    "executions": [
        execution(
            DONE,
            "Implement login 登录 🚀 with UI, backend and tests",
            "succeeded",
            last_seq=6,
            started_at=at(0.5),
            finished_at=at(9),
            result={"status": "succeeded", "speedup": 1.5, "critical_path": ["a"]},
        ),
        execution(
            RUNNING,
            "Fix bug in node X",
            "running",
            task_type="fix",
            mode="chain",
            last_seq=2,
            started_at=at(1),
        ),
        execution(
            PLANNED,
            "Document the API",
            "planned",
            task_type=None,
            dry_run=True,
            reason="dry run: planned only",
        ),
    ],
    "plan_steps": [
        plan_step(DONE, "explore", 0, agent="explore", status="succeeded"),
        plan_step(
            DONE,
            "build",
            1,
            depends_on=["explore"],
            timeout_s=12.5,
            status="succeeded",
        ),
        plan_step(RUNNING, "a", 0, status="running"),
        plan_step(RUNNING, "b", 1, depends_on=["a"], estimate_ms=0),
        plan_step(PLANNED, "write-docs", 0, agent="docs"),
    ],
    "runs": [
        run(
            "1a000000-0000-4000-8000-000000000001",
            DONE,
            "explore",
            1,
            agent="explore",
            status="succeeded",
            finished_at=at(4),
            duration_ms=2000,
            output={"files": ["app/login.py"], "note": "é ✓ 😀", "n": 2**40},
        ),
        run(
            "1a000000-0000-4000-8000-000000000002",
            DONE,
            "build",
            1,
            status="failed",
            finished_at=at(5),
            duration_ms=3000,
            error="command exited with code 1",
            details={"exit_code": 1, "stderr_tail": "Traceback …\nboom\n"},
        ),
        run(
            "1a000000-0000-4000-8000-000000000003",
            DONE,
            "build",
            2,
            status="succeeded",
            finished_at=at(8),
            duration_ms=4000,
            output="plain text output",
        ),
        run("1a000000-0000-4000-8000-000000000004", RUNNING, "a", 1),
    ],
    "events": [
        event(DONE, 1, "execution.started", None, max_parallel=4),
        event(DONE, 2, "step.started", "explore", attempt=1),
        event(DONE, 3, "step.log", "explore", line="reading 登录.py"),
        event(DONE, 4, "step.succeeded", "explore", duration_ms=2000),
        event(DONE, 5, "state.updated", "explore", key="schema", version=2),
        event(DONE, 6, "execution.finished", None, status="succeeded", reason=None),
        event(RUNNING, 1, "execution.started", None, max_parallel=1),
        event(RUNNING, 2, "step.started", "a", attempt=1),
    ],
    "shared_state": [
        {
            "execution_id": DONE,
            "key": "schema",
            "value": {"tables": ["users", "sessions"], "ok": True},
            "version": 2,
            "updated_by_step": "explore",
            "updated_by_run": "1a000000-0000-4000-8000-000000000001",
            "updated_at": at(4),
        },
        {
            "execution_id": DONE,
            "key": "note ✓",
            "value": "a plain string",
            "version": 1,
            "updated_by_step": "build",
            "updated_by_run": "1a000000-0000-4000-8000-000000000003",
            "updated_at": at(8),
        },
        {
            "execution_id": RUNNING,
            "key": "empty",
            "value": None,
            "version": 1,
            "updated_by_step": "a",
            "updated_by_run": "1a000000-0000-4000-8000-000000000004",
            "updated_at": at(3),
        },
    ],
}


def _reflected(connection) -> MetaData:  # type: ignore[no-untyped-def]
    metadata = MetaData()
    metadata.reflect(connection)
    return metadata


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite keeps no offset
    return value


async def insert_rows(database: Database) -> None:
    async with database.engine.begin() as connection:
        metadata = await connection.run_sync(_reflected)
        for name, rows in FIRST_REVISION_ROWS.items():
            await connection.execute(metadata.tables[name].insert(), rows)


async def read_tables(database: Database) -> dict[str, tuple[Table, list[dict]]]:
    """Each table as the database describes it now, with its rows in key order."""
    tables = {}
    async with database.engine.connect() as connection:
        metadata = await connection.run_sync(_reflected)
        for name, table in metadata.tables.items():
            result = await connection.execute(select(table))
            rows = [{k: _utc(v) for k, v in row.items()} for row in result.mappings()]
            tables[name] = (table, sorted(rows, key=_key_of(table)))
    return tables


def _key_of(table: Table) -> Any:
    return itemgetter(*[column.name for column in table.primary_key.columns])


async def assert_rows_kept(database: Database, revision: str) -> None:
    """Every first-revision row and value is there; later columns hold defaults."""
    tables = await read_tables(database)
    for name, rows in FIRST_REVISION_ROWS.items():
        table, found = tables[name]
        kept = [{column: row[column] for column in rows[0]} for row in found]
        assert kept == sorted(rows, key=_key_of(table)), (revision, name)

        for column in table.columns:
            if column.name not in rows[0]:
                # a new column without a server default starts empty; with one, set
                filled = {row[column.name] is not None for row in found}
                has_default = column.server_default is not None
                assert filled == {has_default}, (revision, name, column.name)

    for name in set(tables) - set(FIRST_REVISION_ROWS) - {"alembic_version"}:
        assert tables[name][1] == [], (revision, name)


class TestMigratingPopulatedData:
    async def test_rows_of_the_first_revision_survive_every_revision_up_and_down(
        self, database: Database
    ) -> None:
        first, *later = revisions()
        await migrate.upgrade(database, first)
        assert await inspected(database, _tables) == set(FIRST_REVISION_ROWS)
        await insert_rows(database)
        await assert_rows_kept(database, first)

        for revision in later:
            await migrate.upgrade(database, revision)
            assert await inspected(database, _current) == revision
            await assert_rows_kept(database, revision)

        for revision in reversed([first, *later[:-1]]):
            await migrate.downgrade(database, revision)
            assert await inspected(database, _current) == revision
            await assert_rows_kept(database, revision)
        assert await inspected(database, _tables) == set(FIRST_REVISION_ROWS)


class TestAnInterruptedMigration:
    async def test_a_migration_cut_off_half_way_leaves_no_table_behind(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # SQLite only: PostgreSQL runs DDL inside transactions of its own
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'px.db'}")

        async def cut_off(connection: Any) -> None:
            raise KeyboardInterrupt  # as a Ctrl-C would, after every table was made

        monkeypatch.setattr(migrate, "_check_foreign_keys", cut_off)
        with pytest.raises(KeyboardInterrupt):
            await migrate.upgrade(database)
        async with database.engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()

        monkeypatch.undo()
        await migrate.upgrade(database)
        async with database.engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
            assert await connection.run_sync(_tables) == set(Base.metadata.tables)
        await database.dispose()

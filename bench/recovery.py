"""How long recovery takes after a SIGKILL, and how many steps run again.

A plan of ten steps runs on a real service process with real command agents
(tests/agents/scripted.py): four quick steps, then one that takes 60 s, then
five quick ones below it. When the long step has started, the process is killed
with SIGKILL and a new one is started on the same database. Printed per case:

- ``start_ms``: spawn of the new process to its /readyz answering 200;
- ``resumed_ms``: SIGKILL to the ``execution.resumed`` event;
- ``rerun_started_ms``: SIGKILL to the re-run of the cut-off step starting;
- ``steps_rerun`` / ``steps_kept``: steps run again / succeeded steps kept.

The baseline, in the same run, is ``start_ms`` of a process that has nothing to
recover. Cases: SQLite restart, PostgreSQL restart, and PostgreSQL with a second
process already running that takes over (no restart at all).

    .venv/bin/python bench/recovery.py [--repeat 3]
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.serving import ServiceProcess  # noqa: E402

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
LONG = {"on_attempt": {"1": {"sleep": 60}}}


def plan() -> dict:
    def step(step_id: str, deps: list[str], **script: object) -> dict:
        return {
            "id": step_id,
            "agent": "builder",
            "depends_on": deps,
            "instructions": json.dumps(script),
        }

    first = [step(f"first-{n}", []) for n in range(4)]
    long = step("long", [s["id"] for s in first], **LONG)
    after = [step(f"after-{n}", ["long"]) for n in range(5)]
    return {
        "task": "recover",
        "plan": {"steps": [*first, long, *after]},
        "config": {"profile": "scripted"},
    }


def at(event: dict) -> float:
    return datetime.fromisoformat(event["created_at"]).timestamp()


async def timed_start(process: ServiceProcess) -> float:
    started = time.monotonic()
    await process.start()
    return (time.monotonic() - started) * 1000


async def one_case(url: str, folder: Path, takeover: bool) -> dict:
    quick = {"PX_LEASE_SECONDS": "15", "PX_HEARTBEAT_SECONDS": "3"}
    owner = await ServiceProcess(url, folder, quick).start()
    other = await ServiceProcess(url, folder, quick).start() if takeover else None
    created = await owner.submit(plan())
    await owner.wait_for_event(created["id"], "step.started", "long")
    await asyncio.sleep(0.2)  # the agent is under way
    killed = time.time()
    owner.kill()
    start_ms = None
    if other is None:
        other = ServiceProcess(url, folder, quick)
        start_ms = await timed_start(other)
    try:
        resumed = await other.wait_for_event(created["id"], "execution.resumed")
        events = await other.events(created["id"])
        rerun = next(
            e
            for e in events
            if e["type"] == "step.started"
            and e["step_id"] == "long"
            and e["data"]["attempt"] == 2
        )
        runs = await other.get(f"/executions/{created['id']}/runs")
        return {
            "start_ms": start_ms,
            "resumed_ms": (at(resumed) - killed) * 1000,
            "rerun_started_ms": (at(rerun) - killed) * 1000,
            "steps_rerun": sorted({r["step_id"] for r in runs if r["attempt"] > 1}),
            "steps_kept": len(resumed["data"]["succeeded_steps"]),
        }
    finally:
        other.stop()


async def postgres_database() -> tuple[str, str]:
    name = f"px_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(ADMIN_DSN)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop(name: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.close()


def summary(case: str, samples: list[dict]) -> dict:
    def median(key: str) -> float | None:
        values = [s[key] for s in samples if s[key] is not None]
        return round(statistics.median(values)) if values else None

    return {
        "case": case,
        "runs": len(samples),
        "start_ms": median("start_ms"),
        "resumed_ms": median("resumed_ms"),
        "rerun_started_ms": median("rerun_started_ms"),
        "steps_rerun": samples[0]["steps_rerun"],
        "steps_kept": samples[0]["steps_kept"],
    }


async def main(repeat: int) -> None:
    folder = Path(tempfile.mkdtemp())
    baseline = []
    for _ in range(repeat):
        process = ServiceProcess(f"sqlite+aiosqlite:///{folder / 'empty.db'}", folder)
        baseline.append(await timed_start(process))
        process.stop()
    print(
        json.dumps(
            {
                "case": "baseline: start with nothing to recover (SQLite)",
                "start_ms": round(statistics.median(baseline)),
            }
        )
    )

    samples = []
    for n in range(repeat):
        url = f"sqlite+aiosqlite:///{folder / f'case-{n}.db'}"
        samples.append(await one_case(url, folder, takeover=False))
    print(json.dumps(summary("SIGKILL, restart (SQLite)", samples)))

    for case, takeover in [
        ("SIGKILL, restart (PostgreSQL)", False),
        ("SIGKILL, the other process takes over (PostgreSQL)", True),
    ]:
        samples = []
        for _ in range(repeat):
            name, url = await postgres_database()
            try:
                samples.append(await one_case(url, folder, takeover))
            finally:
                await drop(name)
        print(json.dumps(summary(case, samples)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeat))

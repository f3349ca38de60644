"""W3 in small: two branches, a1 (1.0 s) -> a2 (0.1 s) and b1 (0.1 s) -> b2 (1.0 s).

The critical path is 1.1 s; an executor with phase barriers takes 2.0 s. Runs the
plan through the in-process service on SQLite (every run and event stored) and
through plain asyncio tasks in the same process, and prints one JSON line each.

    .venv/bin/python bench/two_branches.py [--repeat 5]
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from app.events.broker import Broker
from app.execution.schemas import ExecutionCreate
from app.execution.service import ExecutionService
from app.runtime import open_runtime
from app.settings import Settings

STEPS = [
    {"id": "a1", "agent": "builder", "estimate_ms": 1000},
    {"id": "a2", "agent": "builder", "estimate_ms": 100, "depends_on": ["a1"]},
    {"id": "b1", "agent": "builder", "estimate_ms": 100},
    {"id": "b2", "agent": "builder", "estimate_ms": 1000, "depends_on": ["b1"]},
]
CRITICAL_PATH_MS = 1100


async def asyncio_baseline() -> float:
    done = {step["id"]: asyncio.Event() for step in STEPS}

    async def run(step: dict) -> None:
        for dependency in step.get("depends_on", []):
            await done[dependency].wait()
        await asyncio.sleep(step["estimate_ms"] / 1000)
        done[step["id"]].set()

    started = time.perf_counter()
    await asyncio.gather(*(run(step) for step in STEPS))
    return (time.perf_counter() - started) * 1000


async def parallel_exec(service: ExecutionService, broker: Broker) -> float:
    request = ExecutionCreate.model_validate({"task": "two", "plan": {"steps": STEPS}})
    started = time.perf_counter()
    execution, _ = await service.submit(request)
    with broker.subscribe(execution.id) as queue:
        while not (await asyncio.wait_for(queue.get(), timeout=30)).is_final:
            pass
    return (time.perf_counter() - started) * 1000


async def main(repeat: int) -> None:
    folder = Path(tempfile.mkdtemp())
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        workdir_root=folder / "runs",
        log_level="WARNING",
        _env_file=None,
    )
    async with open_runtime(settings) as runtime:
        await compare(runtime.service, runtime.broker, repeat)


async def compare(service: ExecutionService, broker: Broker, repeat: int) -> None:
    for name, measure in [
        ("asyncio", asyncio_baseline),
        ("parallel-exec (in-process, SQLite)", lambda: parallel_exec(service, broker)),
    ]:
        await measure()  # warm-up
        samples = [await measure() for _ in range(repeat)]
        print(
            json.dumps(
                {
                    "workload": "two-branches",
                    "system": name,
                    "critical_path_ms": CRITICAL_PATH_MS,
                    "median_ms": round(statistics.median(samples), 1),
                    "min_ms": round(min(samples), 1),
                    "max_ms": round(max(samples), 1),
                    "over_critical_path_pct": round(
                        (statistics.median(samples) / CRITICAL_PATH_MS - 1) * 100, 2
                    ),
                }
            )
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args().repeat))

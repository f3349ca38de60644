"""The benchmark suite: workloads W1-W7, each on parallel-exec and on plain asyncio.

    .venv/bin/python bench/run.py                      # everything
    .venv/bin/python bench/run.py W1 W3 --systems asyncio,in-process

Prints one JSON line per (workload, system): the median, min and max over the
workload's repetitions after its warm-up runs, the figure the workload is about,
and the peak memory of the process that ran it. Each pair runs in a process of
its own, so that the memory figures do not mix. Systems:

- ``asyncio``: plain asyncio tasks, no storage (the baseline of the same run);
- ``in-process``: the executor in this process, on a new SQLite file, every
  plan, run and event stored;
- ``http``: a service started as users start it (``python -m app``), a new
  SQLite file, the plan sent with ``POST /executions`` and followed over its
  WebSocket until the final event.

W6 (100 WebSocket clients watching one W1 execution) and W7 (dry-run
``POST /executions`` at a fixed concurrency) run against a service only.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import httpx  # noqa: E402
import websockets  # noqa: E402
from workloads import Workload, asyncio_baseline, load  # noqa: E402

SYSTEMS = ("asyncio", "in-process", "http")
WORKLOAD_IDS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
SERVICE_WORKLOADS = ("W6", "W7")
IMPLEMENT_TASK = "Implement login feature with UI, backend, and tests"
WATCHERS = 100  # W6
CONCURRENCY = 16  # W7
REQUESTS = 2000  # W7
LIMITS = {  # room for the largest workload; the defaults are for people
    "PX_MAX_PLAN_STEPS": "10000",
    "PX_MAX_PARALLEL_LIMIT": "10000",
    "PX_MAX_PARALLEL_DEFAULT": "10000",
    "PX_SERVER_MAX_PARALLEL": "10000",
    "PX_MAX_BODY_BYTES": str(64 * 1024 * 1024),
    "PX_LOG_LEVEL": "WARNING",
}


# one (workload, system) pair, in a process of its own


async def measure(workload: Workload, system: str) -> dict[str, Any]:
    if system == "asyncio":
        run = lambda: asyncio_baseline(workload)  # noqa: E731
        return await repeat(workload, run)
    if system == "in-process":
        return await in_process(workload)
    return await over_http(workload)


async def repeat(
    workload: Workload, run: Callable[[], Awaitable[float]]
) -> dict[str, Any]:
    for _ in range(workload.warmup):
        await run()
    samples = [await run() for _ in range(workload.repetitions)]
    return figures(workload, samples)


def figures(workload: Workload, samples: list[float]) -> dict[str, Any]:
    median = statistics.median(samples)
    result = {
        "runs": len(samples),
        "median_ms": round(median, 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
    }
    critical_ms = workload.critical_path_s * 1000
    if workload.overhead_divisor:
        result["overhead_per_node_ms"] = round(
            (median - critical_ms) / workload.overhead_divisor, 4
        )
    if critical_ms:
        result["critical_path_ms"] = critical_ms
        result["makespan_over_critical_path"] = round(median / critical_ms, 4)
    return result


async def in_process(workload: Workload) -> dict[str, Any]:
    from bench_agents import sleep_step

    from app.execution.schemas import ExecutionCreate
    from app.runtime import open_runtime

    folder = Path(tempfile.mkdtemp(prefix="px-bench-"))
    async with open_runtime(bench_settings(folder)) as runtime:
        runtime.registry.add_function("bench", sleep_step)
        body = {"task": workload.name, "plan": {"steps": workload.plan_steps()}}
        body["config"] = {"profile": "bench", "max_parallel": len(workload.nodes)}

        async def run() -> float:
            request = ExecutionCreate.model_validate(body)
            began = time.perf_counter()
            execution, _ = await runtime.service.submit(request)
            with runtime.broker.subscribe(execution.id) as queue:
                while not (await queue.get() or _Gap()).is_final:
                    pass
            elapsed = (time.perf_counter() - began) * 1000
            stored = await runtime.service.get(execution.id)
            assert stored.status == "succeeded", stored
            return elapsed

        result = await repeat(workload, run)
    if workload.id == "W5":
        result["plan_ms"] = plan_time(workload)
    return result


class _Gap:
    """What a live queue's None (events dropped) stands for: not the end."""

    is_final = False


def plan_time(workload: Workload) -> float:
    """Validating and phasing the plan: the median of five, in milliseconds."""
    from app.planning import make_plan
    from app.planning.models import StepSpec

    steps = [StepSpec.model_validate(step) for step in workload.plan_steps()]
    samples = []
    for _ in range(5):
        began = time.perf_counter()
        make_plan(workload.name, steps=steps, max_parallel=4, max_steps=10000)
        samples.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(samples), 2)


async def over_http(workload: Workload) -> dict[str, Any]:
    async with Service() as service:
        body = {
            "task": workload.name,
            "plan": {"steps": workload.plan_steps()},
            "config": {"profile": "bench", "max_parallel": len(workload.nodes)},
        }

        async def run() -> float:
            began = time.perf_counter()
            response = await service.client.post("/executions", json=body)
            response.raise_for_status()
            execution_id = response.json()["id"]
            async for event in service.events(execution_id):
                if event["type"] == "execution.finished":
                    assert event["data"]["status"] == "succeeded", event
            return (time.perf_counter() - began) * 1000

        result = await repeat(workload, run)
        result["service_peak_rss_mb"] = service.peak_rss_mb()
        return result


# W6 and W7: a service and its clients


async def watchers(workload: Workload, batched: bool) -> dict[str, Any]:
    """W6: 100 WebSocket clients follow one W1 execution from its start.

    The execution's first step waits until every client has its first event,
    so that the clients see the rest live rather than read them from the table.
    ``batched``: the clients ask for arrays of the events ready at once.
    """
    gates = Path(tempfile.mkdtemp(prefix="px-bench-gates-"))
    async with Service({"PX_BENCH_GATES": str(gates)}) as service:
        body = {
            "task": workload.name,
            "plan": {"steps": workload.plan_steps()},
            "config": {"profile": "bench", "max_parallel": len(workload.nodes)},
        }
        lags, complete = [], 0
        for _ in range(workload.warmup + workload.repetitions):
            response = await service.client.post("/executions", json=body)
            execution_id = response.json()["id"]
            connected = asyncio.Semaphore(0)
            watching = asyncio.gather(
                *(
                    service.received(execution_id, connected, batched)
                    for _ in range(WATCHERS)
                )
            )
            for _ in range(WATCHERS):
                await connected.acquire()
            (gates / execution_id).touch()
            streams = await watching
            last = streams[0][0][-1][0]["seq"]
            complete += all(
                [event["seq"] for event, _ in events] == list(range(1, last + 1))
                for events, _ in streams
            )
            # live events only: one written before a client connected waited
            # for the client, not for the service
            lags += [
                (at - created) * 1000
                for events, opened in streams
                for event, at in events
                if (created := _timestamp(event["created_at"])) >= opened
            ]
        lags.sort()
        return {
            "clients": WATCHERS,
            "executions": workload.warmup + workload.repetitions,
            "events_per_client": last,
            "every_client_got_every_event_once_in_order": complete
            == workload.warmup + workload.repetitions,
            "lag_p50_ms": round(_percentile(lags, 50), 2),
            "lag_p99_ms": round(_percentile(lags, 99), 2),
            "lag_max_ms": round(lags[-1], 2),
            "service_peak_rss_mb": service.peak_rss_mb(),
        }


async def dry_runs() -> dict[str, Any]:
    """W7: dry-run POST /executions of the implement task, CONCURRENCY at once."""
    async with Service() as service:
        body = {"task": IMPLEMENT_TASK, "config": {"dry_run": True}}
        latencies: list[float] = []
        left = REQUESTS

        async def client() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                began = time.perf_counter()
                response = await service.client.post("/executions", json=body)
                latencies.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 201, response.text

        for _ in range(200):  # warm-up
            await service.client.post("/executions", json=body)
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - began
        latencies.sort()
        return {
            "requests": REQUESTS,
            "concurrency": CONCURRENCY,
            "requests_per_s": round(REQUESTS / elapsed, 1),
            "latency_p50_ms": round(_percentile(latencies, 50), 2),
            "latency_p99_ms": round(_percentile(latencies, 99), 2),
            "service_peak_rss_mb": service.peak_rss_mb(),
        }


class Service:
    """``python -m app`` on a free port of 127.0.0.1 with a new SQLite file."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env or {}

    async def __aenter__(self) -> "Service":
        folder = Path(tempfile.mkdtemp(prefix="px-bench-"))
        port = _free_port()
        env = {
            **os.environ,
            **LIMITS,
            **self.env,
            "PX_PORT": str(port),
            "PX_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'bench.db'}",
            "PX_WORKDIR_ROOT": str(folder / "runs"),
            "PX_PROFILES_PATH": str(BENCH / "profiles.toml"),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stderr=subprocess.PIPE
        )
        self.base_url = f"http://127.0.0.1:{port}"
        limits = httpx.Limits(max_connections=CONCURRENCY * 2)
        self.client = httpx.AsyncClient(
            base_url=self.base_url, timeout=120, limits=limits
        )
        for _ in range(600):
            try:
                if (await self.client.get("/readyz")).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(self.process.stderr.read().decode())
            await asyncio.sleep(0.05)
        raise RuntimeError("the service did not get ready")

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.aclose()
        self.process.terminate()
        self.process.wait(30)

    async def events(self, execution_id: str):
        url = self.base_url.replace("http", "ws", 1)
        stream = f"{url}/executions/{execution_id}/stream?after_seq=0"
        async with websockets.connect(stream, max_size=None) as socket_:
            async for message in socket_:
                yield json.loads(message)

    async def received(
        self, execution_id: str, connected: asyncio.Semaphore, batched: bool
    ) -> tuple[list[tuple[dict, float]], float]:
        """Every event with the time it arrived, and when the stream opened."""
        url = self.base_url.replace("http", "ws", 1)
        stream = f"{url}/executions/{execution_id}/stream?after_seq=0"
        stream += "&batch=true" if batched else ""
        events: list[tuple[dict, float]] = []
        async with websockets.connect(stream, max_size=None) as socket_:
            opened = time.time()
            async for message in socket_:
                at, decoded = time.time(), json.loads(message)
                if not events:  # the service is following the execution now
                    connected.release()
                for event in decoded if batched else [decoded]:
                    events.append((event, at))
        return events, opened

    def peak_rss_mb(self) -> float:
        return _peak_rss_mb(f"/proc/{self.process.pid}/status")


def _peak_rss_mb(status_path: str) -> float:
    for line in Path(status_path).read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _percentile(ordered: list[float], percent: float) -> float:
    index = min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))
    return ordered[index]


def bench_settings(folder: Path):
    from app.settings import Settings

    limits = {key.removeprefix("PX_").lower(): value for key, value in LIMITS.items()}
    return Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        workdir_root=folder / "runs",
        _env_file=None,
        **limits,
    )


# the driver


def run_one(workload_id: str, system: str) -> None:
    if workload_id == "W7":  # not a graph: submits of the implement task
        result = asyncio.run(dry_runs())
    elif workload_id == "W6":  # watchers of a W1 execution
        result = asyncio.run(watchers(load()["W1"], system == "http-batched"))
    else:
        result = asyncio.run(measure(load()[workload_id], system))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = {"workload": workload_id, "system": system, **result}
    line["peak_rss_mb"] = round(peak_kb / 1024, 1)
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workloads", nargs="*", default=list(WORKLOAD_IDS))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--one", nargs=2, metavar=("WORKLOAD", "SYSTEM"))
    options = parser.parse_args()
    if options.one:
        run_one(*options.one)
        return

    for workload_id in options.workloads:
        systems = options.systems.split(",")
        if workload_id == "W6":
            systems = ["http", "http-batched"]
        elif workload_id in SERVICE_WORKLOADS:
            systems = ["http"]
        for system in systems:
            subprocess.run(
                [sys.executable, __file__, "--one", workload_id, system], check=True
            )


if __name__ == "__main__":
    main()

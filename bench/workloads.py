"""The benchmark workloads (bench/workloads.json) and the plain asyncio baseline.

Each node of a workload is an agent that sleeps ``duration_s`` (0: it yields
once) and returns a small dict; it may start once every node it depends on has
finished. The file is the project's shared workload set, kept here as it is.
"""

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKLOADS_FILE = Path(__file__).with_name("workloads.json")
# the workload roles, as the agents of a plan
AGENTS = {
    "explorer": "explore",
    "architect": "architect",
    "builder": "builder",
    "ui": "ui",
    "integrations": "integrations",
    "quality": "quality",
    "docs": "docs",
    "reviewer": "reviewer",
}


@dataclass(frozen=True)
class Workload:
    id: str
    name: str
    nodes: list[dict[str, Any]]
    critical_path_s: float
    overhead_divisor: int | None
    warmup: int
    repetitions: int

    def plan_steps(self) -> list[dict[str, Any]]:
        """The nodes as the explicit plan of a POST /executions body."""
        return [
            {
                "id": node["id"],
                "agent": AGENTS.get(node["role"], "builder"),
                "depends_on": node["depends_on"],
                "estimate_ms": round(node["duration_s"] * 1000),
            }
            for node in self.nodes
        ]


def load(path: Path = WORKLOADS_FILE) -> dict[str, Workload]:
    document = json.loads(path.read_text())
    return {
        item["id"]: Workload(
            id=item["id"],
            name=item["name"],
            nodes=item["nodes"],
            critical_path_s=item["critical_path_s"],
            overhead_divisor=item.get("overhead_divisor"),
            warmup=item["warmup"],
            repetitions=item["repetitions"],
        )
        for item in document["workloads"]
    }


async def agent(duration_s: float) -> dict[str, Any]:
    """One workload node: sleep, or yield once, and return a small dict."""
    await asyncio.sleep(duration_s)
    return {"ok": True}


async def asyncio_baseline(workload: Workload) -> float:
    """The workload as plain asyncio tasks, each started when its inputs are done.

    Counts of unfinished dependencies decide when a node's task is created, so
    the baseline does no more scheduling work than it must. Returns the wall
    time in milliseconds.
    """
    waiting = {node["id"]: len(node["depends_on"]) for node in workload.nodes}
    dependents: dict[str, list[str]] = {node["id"]: [] for node in workload.nodes}
    duration = {node["id"]: node["duration_s"] for node in workload.nodes}
    for node in workload.nodes:
        for dependency in node["depends_on"]:
            dependents[dependency].append(node["id"])
    left = len(workload.nodes)
    finished = asyncio.Event()

    def start(node_id: str) -> None:
        task = asyncio.ensure_future(agent(duration[node_id]))
        task.add_done_callback(lambda _: done(node_id))

    def done(node_id: str) -> None:
        nonlocal left
        left -= 1
        for dependent in dependents[node_id]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                start(dependent)
        if left == 0:
            finished.set()

    began = time.perf_counter()
    for node_id, count in list(waiting.items()):
        if count == 0:
            start(node_id)
    await finished.wait()
    return (time.perf_counter() - began) * 1000

"""Which steps may start: pure bookkeeping over a plan's graph.

``ReadySet`` keeps, for every pending step, the number of dependencies that have
not yet succeeded. A step becomes ready when that count reaches zero; ready steps
come out highest priority first (the longest remaining path to the end of the
plan), then in plan order. When a step fails, every step downstream of it can
never run and is reported as skipped. Each update costs O(edges touched).
"""

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    id: str
    depends_on: Sequence[str]
    priority: int


class ReadySet:
    def __init__(self, nodes: Iterable[Node]) -> None:
        self._nodes = {node.id: node for node in nodes}
        self._order = {step_id: index for index, step_id in enumerate(self._nodes)}
        self._waiting_on = {
            node.id: len(set(node.depends_on)) for node in self._nodes.values()
        }
        self._dependents: dict[str, list[str]] = {
            step_id: [] for step_id in self._nodes
        }
        for node in self._nodes.values():
            for dependency in set(node.depends_on):
                self._dependents[dependency].append(node.id)
        self._heap: list[tuple[int, int, str]] = []
        self._unfinished = set(self._nodes)
        self._started: set[str] = set()
        for step_id, count in self._waiting_on.items():
            if count == 0:
                self._push(step_id)

    def node(self, step_id: str) -> Node:
        return self._nodes[step_id]

    def has_ready(self) -> bool:
        return bool(self._heap)

    def pop(self) -> str:
        """The ready step to start next."""
        step_id = heapq.heappop(self._heap)[2]
        self._started.add(step_id)
        return step_id

    def succeeded(self, step_id: str) -> list[str]:
        """Record a success; return the steps that became ready."""
        self._unfinished.discard(step_id)
        ready = []
        for dependent in self._dependents[step_id]:
            self._waiting_on[dependent] -= 1
            if self._waiting_on[dependent] == 0 and dependent in self._unfinished:
                self._push(dependent)
                ready.append(dependent)
        return ready

    def did_not_succeed(self, step_id: str) -> list[str]:
        """Record a failure; return the downstream steps that can no longer run."""
        self._unfinished.discard(step_id)
        skipped = []
        stack = list(self._dependents[step_id])
        while stack:
            dependent = stack.pop()
            if dependent in self._unfinished:
                self._unfinished.discard(dependent)
                skipped.append(dependent)
                stack.extend(self._dependents[dependent])
        return sorted(skipped, key=self._order.__getitem__)

    def restore(self, ended: Mapping[str, bool]) -> list[str]:
        """Replay steps that ended before a restart (True if they succeeded).

        Returns the steps that can no longer run because one of those did not
        succeed; the rest become ready as if the loop had seen it all happen.
        """
        blocked: list[str] = []
        for step_id, succeeded in ended.items():
            self._started.add(step_id)
            if succeeded:
                self.succeeded(step_id)
            else:
                blocked += self.did_not_succeed(step_id)
        self._heap = []
        for step_id in self._nodes:
            if (
                self._waiting_on[step_id] == 0
                and step_id in self._unfinished
                and step_id not in self._started
            ):
                self._push(step_id)
        return sorted(set(blocked) - set(ended), key=self._order.__getitem__)

    def drain(self) -> list[str]:
        """Take every step not yet started out of the set, in plan order."""
        self._heap.clear()
        never_started = [
            s for s in self._nodes if s in self._unfinished and s not in self._started
        ]
        self._unfinished.difference_update(never_started)
        return never_started

    def _push(self, step_id: str) -> None:
        node = self._nodes[step_id]
        heapq.heappush(self._heap, (-node.priority, self._order[step_id], step_id))


class PhaseTracker:
    """Counts steps per phase to tell when a phase starts and when it is over."""

    def __init__(self, phase_of: Mapping[str, int]) -> None:
        self._phase_of = dict(phase_of)
        self._left: dict[int, int] = {}
        for phase in self._phase_of.values():
            self._left[phase] = self._left.get(phase, 0) + 1
        self.started: set[int] = set()

    def start(self, step_id: str) -> int | None:
        """Record a start; return the phase if it is the phase's first."""
        phase = self._phase_of[step_id]
        if phase in self.started:
            return None
        self.started.add(phase)
        return phase

    def restore(self, started: Iterable[str], ended: Iterable[str]) -> None:
        """Count steps that started or ended before a restart."""
        for step_id in started:
            self.started.add(self._phase_of[step_id])
        for step_id in ended:
            self._left[self._phase_of[step_id]] -= 1

    def finish(self, step_id: str) -> int | None:
        """Record a step's end; return the phase if it was the phase's last."""
        phase = self._phase_of[step_id]
        self._left[phase] -= 1
        return phase if self._left[phase] == 0 else None

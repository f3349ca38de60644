"""Plan graphs: the checks every plan passes and the figures drawn from it.

A plan is a directed acyclic graph of steps; each step names the steps it
depends on. ``StepGraph.build`` checks the steps, in this order, and raises an
error that names the offenders:

- the plan has at least one step and at most ``max_steps`` (``PlanTooLarge``);
- step ids are unique (details ``duplicate_ids``);
- every dependency names a step of the plan (details ``unknown_dependencies``);
- there is no cycle (details ``cycle``: ids in order, each depending on the next,
  the first id repeated at the end; a step that depends on itself is a cycle of
  one).

A dependency listed twice by one step says nothing new, so it is merged: the
graph keeps its first mention.

The graph then holds its steps in a stable topological order: the plan's own
order wherever that order already respects the dependencies. Every tie below is
broken by this order. The figures are:

- phases: a step's depth is 0 without dependencies, else one more than its
  deepest dependency; phases group the ids at each depth;
- remaining path: a step's estimate plus the longest remaining path among the
  steps that depend on it; the executor runs the largest first when slots bind;
- critical path: the longest chain of estimates through the graph;
- parallel estimate: a list-scheduling simulation with ``max_parallel`` slots;
  a step starts as soon as its dependencies are done and a slot is free, the
  longest remaining path first.

Checks and figures take O(V + E) time; the simulation keeps its ready and
running steps in heaps, O((V + E) log V).
"""

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

from app.errors import InvalidRequest, PlanInvalid, PlanTooLarge
from app.planning.estimates import resolve_estimate
from app.planning.models import Agent, PlannedStep, StepSpec

Step = StepSpec | PlannedStep


@dataclass(frozen=True)
class StepGraph:
    """Checked steps in a stable topological order, with their links and estimates."""

    steps: list[Step]
    ids: list[str]
    deps: list[list[int]]
    dependents: list[list[int]]
    estimates: list[int]

    @classmethod
    def build(
        cls,
        steps: Sequence[Step],
        *,
        max_steps: int | None = None,
        learned: Mapping[Agent, int] | None = None,
    ) -> "StepGraph":
        """Check the steps and order them; raise PlanInvalid or PlanTooLarge."""
        _check_size(len(steps), max_steps)
        index = _index(steps)
        deps = _resolve_deps(steps, index)
        order = _topological_order(steps, deps)

        position = {old: new for new, old in enumerate(order)}
        ordered_deps = [[position[d] for d in deps[old]] for old in order]
        ordered = [steps[old] for old in order]
        return cls(
            steps=ordered,
            ids=[step.id for step in ordered],
            deps=ordered_deps,
            dependents=_invert(ordered_deps),
            estimates=[_estimate(step, learned) for step in ordered],
        )

    def phases(self) -> list[list[str]]:
        """Step ids at each depth of the graph, in plan order within a phase."""
        groups: list[list[str]] = []
        for step_id, depth in zip(self.ids, self.depths, strict=True):
            if depth == len(groups):
                groups.append([])
            groups[depth].append(step_id)
        return groups

    @cached_property
    def depths(self) -> list[int]:
        """Each step's depth: 0 without dependencies, else 1 + its deepest one's."""
        depths: list[int] = []
        for deps in self.deps:
            depths.append(1 + max(depths[d] for d in deps) if deps else 0)
        return depths

    @cached_property
    def remaining_ms(self) -> list[int]:
        """Each step's estimate plus the longest remaining path after it."""
        remaining = [0] * len(self.ids)
        for v in reversed(range(len(self.ids))):
            after = max((remaining[d] for d in self.dependents[v]), default=0)
            remaining[v] = self.estimates[v] + after
        return remaining

    def critical_path(self) -> tuple[list[str], int]:
        """The ids of the longest chain of estimates, and its length in ms."""
        remaining = self.remaining_ms
        roots = [v for v, deps in enumerate(self.deps) if not deps]
        v = _longest(roots, remaining)
        path = [v]
        while self.dependents[v]:
            v = _longest(self.dependents[v], remaining)
            path.append(v)
        return [self.ids[v] for v in path], remaining[path[0]]

    def sequential_ms(self) -> int:
        """The wall time with one step at a time: the sum of the estimates."""
        return sum(self.estimates)

    def parallel_ms(self, max_parallel: int) -> int:
        """The simulated wall time with max_parallel slots."""
        if max_parallel < 1:
            raise InvalidRequest(
                "max_parallel must be at least 1", max_parallel=max_parallel
            )
        remaining = self.remaining_ms
        waiting = [len(deps) for deps in self.deps]
        ready = [(-remaining[v], v) for v, count in enumerate(waiting) if not count]
        heapq.heapify(ready)
        running: list[tuple[int, int]] = []
        now = 0

        while ready or running:
            # start what is ready, while slots are free
            while ready and len(running) < max_parallel:
                _, v = heapq.heappop(ready)
                heapq.heappush(running, (now + self.estimates[v], v))

            # move to the next finish and release every step finishing then
            now = running[0][0]
            while running and running[0][0] == now:
                _, done = heapq.heappop(running)
                for d in self.dependents[done]:
                    waiting[d] -= 1
                    if not waiting[d]:
                        heapq.heappush(ready, (-remaining[d], d))
        return now


def check(steps: Sequence[Step], *, max_steps: int | None = None) -> None:
    """Raise PlanInvalid or PlanTooLarge when the steps do not form a valid plan."""
    StepGraph.build(steps, max_steps=max_steps)


def phases(steps: Sequence[Step]) -> list[list[str]]:
    """Step ids at each depth of the graph, in plan order within a phase."""
    return StepGraph.build(steps).phases()


def remaining_path_ms(steps: Sequence[Step]) -> dict[str, int]:
    """Each step's estimate plus the longest remaining path through its dependents."""
    graph = StepGraph.build(steps)
    return dict(zip(graph.ids, graph.remaining_ms, strict=True))


def critical_path(steps: Sequence[Step]) -> tuple[list[str], int]:
    """The ids of the longest chain of estimates, and its length in ms."""
    return StepGraph.build(steps).critical_path()


def parallel_ms(steps: Sequence[Step], max_parallel: int) -> int:
    """The simulated wall time of the steps with max_parallel slots."""
    return StepGraph.build(steps).parallel_ms(max_parallel)


def _check_size(count: int, max_steps: int | None) -> None:
    if count == 0:
        raise PlanInvalid("plan has no steps")
    if max_steps is not None and count > max_steps:
        raise PlanTooLarge(
            f"plan has {count} steps, more than the limit of {max_steps}",
            steps=count,
            max_steps=max_steps,
        )


def _index(steps: Sequence[Step]) -> dict[str, int]:
    index: dict[str, int] = {}
    duplicates: dict[str, None] = {}
    for i, step in enumerate(steps):
        if step.id in index:
            duplicates[step.id] = None
        index.setdefault(step.id, i)

    if duplicates:
        names = list(duplicates)
        message = "plan has duplicate step ids: " + ", ".join(names)
        raise PlanInvalid(message, duplicate_ids=names)
    return index


def _resolve_deps(steps: Sequence[Step], index: dict[str, int]) -> list[list[int]]:
    deps: list[list[int]] = []
    unknown: dict[str, list[str]] = {}
    for step in steps:
        names = list(dict.fromkeys(step.depends_on))
        deps.append([index[name] for name in names if name in index])
        missing = [name for name in names if name not in index]
        if missing:
            unknown[step.id] = missing

    if unknown:
        listed = "; ".join(f"{s} -> {', '.join(m)}" for s, m in unknown.items())
        message = "plan has dependencies on unknown steps: " + listed
        raise PlanInvalid(message, unknown_dependencies=unknown)
    return deps


def _topological_order(steps: Sequence[Step], deps: list[list[int]]) -> list[int]:
    # depth-first over dependencies, roots in plan order: a step is placed right
    # after its dependencies, so an order that is already topological is kept
    new, open_, placed = 0, 1, 2
    state = [new] * len(deps)
    order: list[int] = []

    for root in range(len(deps)):
        if state[root] != new:
            continue
        state[root] = open_
        path, cursors = [root], [0]

        while path:
            v, i = path[-1], cursors[-1]
            if i == len(deps[v]):
                state[v] = placed
                order.append(v)
                path.pop()
                cursors.pop()
                continue

            cursors[-1] += 1
            dep = deps[v][i]
            if state[dep] == open_:
                _raise_cycle(steps, path[path.index(dep) :] + [dep])
            if state[dep] == new:
                state[dep] = open_
                path.append(dep)
                cursors.append(0)
    return order


def _raise_cycle(steps: Sequence[Step], cycle: list[int]) -> NoReturn:
    ids = [steps[v].id for v in cycle]
    message = "plan has a cycle: " + " -> ".join(ids)
    raise PlanInvalid(message, cycle=ids)


def _invert(deps: list[list[int]]) -> list[list[int]]:
    dependents: list[list[int]] = [[] for _ in deps]
    for v, step_deps in enumerate(deps):
        for d in step_deps:
            dependents[d].append(v)
    return dependents


def _longest(candidates: list[int], remaining: list[int]) -> int:
    return max(candidates, key=lambda v: (remaining[v], -v))


def _estimate(step: Step, learned: Mapping[Agent, int] | None) -> int:
    if isinstance(step, PlannedStep):
        return step.estimate_ms
    return resolve_estimate(step, learned)

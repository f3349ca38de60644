"""The planner: from a task in plain words to a checked plan of agent steps.

A plan is a dependency graph of steps, each carried out by one agent. The
planner is deterministic and offline: it reads whole words of the task, never
substrings, and applies fixed rules, so one task always gives the same plan.

Building a plan takes four moves:

1. classify the task (implement, fix, docs, ...): the leading verb decides when
   it can, else the first topic word the task names;
2. choose the mode: ``chain`` follows the task type's template; ``decompose``
   gives each sub-goal its own work branch while exploration, design, docs and
   review stay shared; ``auto`` decomposes when the task names two or more
   sub-goals. A caller who passes steps gets an ``explicit`` plan: checked and
   estimated, never rebuilt;
3. draft the template's steps; the layers the task names (UI, backend,
   integrations, tests) decide which agents appear;
4. check the graph (size, unique ids, known dependencies, no cycle) and draw its
   figures: phases, critical path, sequential and parallel estimates.

Invariants of a returned plan: its steps come in a stable topological order;
each step's phase is its depth in the graph; ``parallel_ms`` is at least the
critical path and at most ``sequential_ms``, and equals ``sequential_ms`` when
parallel runs are off. Phases are for people and figures: the executor starts a
step as soon as its dependencies are done, never at a phase boundary.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from app.errors import InvalidRequest
from app.planning.classify import classify
from app.planning.decompose import named_layers, sub_goals
from app.planning.graph import StepGraph
from app.planning.models import Agent, Mode, Plan, PlannedStep, StepSpec, TaskType
from app.planning.templates import draft_steps


def make_plan(
    task: str,
    *,
    mode: Mode = Mode.auto,
    steps: list[StepSpec] | None = None,
    max_parallel: int = 4,
    parallel: bool = True,
    max_steps: int = 500,
    learned_estimates: Mapping[Agent, int] | None = None,
) -> Plan:
    """Plan a task: draft its steps (or take the given ones), check and estimate."""
    task_type = classify(task)
    mode, specs = _draft(task, task_type, mode, steps)

    graph = StepGraph.build(specs, max_steps=max_steps, learned=learned_estimates)
    path, path_ms = graph.critical_path()
    sequential = graph.sequential_ms()
    estimated = graph.parallel_ms(max_parallel) if parallel else sequential

    return Plan.model_validate(
        {
            "mode": mode,
            "task_type": task_type,
            "steps": _planned_steps(graph),
            "phases": graph.phases(),
            "critical_path": path,
            "critical_path_ms": path_ms,
            "sequential_ms": sequential,
            "parallel_ms": estimated,
            "estimated_savings_ms": sequential - estimated,
            "max_parallel": max_parallel if parallel else 1,
        }
    )


def describe(plan: Plan) -> str:
    """The plan as text for a terminal: each phase's steps, then the figures."""
    by_id = {step.id: step for step in plan.steps}
    width = max((len(step.id) for step in plan.steps), default=0)
    lines = [_headline(plan)]

    for number, ids in enumerate(plan.phases, 1):
        lines.append(_phase_heading(number, len(ids), plan.max_parallel))
        lines.extend(_step_line(by_id[step_id], width) for step_id in ids)

    path = " -> ".join(plan.critical_path)
    lines.append(f"Critical path ({format_ms(plan.critical_path_ms)}): {path}")
    lines.append(
        f"Estimated: sequential {format_ms(plan.sequential_ms)}, "
        f"parallel {format_ms(plan.parallel_ms)}, "
        f"savings {format_ms(plan.estimated_savings_ms)}"
    )
    return "\n".join(lines)


def _draft(
    task: str, task_type: TaskType, mode: Mode, steps: Sequence[StepSpec] | None
) -> tuple[Mode, list[StepSpec]]:
    if steps is not None:
        return Mode.explicit, list(steps)
    if mode is Mode.explicit:
        raise InvalidRequest.on_field(
            "body.config.mode", "explicit needs the plan's steps in plan.steps"
        )

    goals = sub_goals(task)
    if mode is Mode.auto:
        mode = Mode.decompose if len(goals) >= 2 else Mode.chain
    branches = goals if mode is Mode.decompose else []
    return mode, draft_steps(task, task_type, branches, named_layers(task))


def _planned_steps(graph: StepGraph) -> list[dict[str, Any]]:
    # plain dicts: the Plan validates them all in one call, much faster than
    # building thousands of models one by one
    return [
        {
            "id": step.id,
            "agent": step.agent,
            "title": step.title,
            "instructions": step.instructions,
            "depends_on": [graph.ids[d] for d in deps],
            "estimate_ms": estimate,
            "timeout_s": step.timeout_s,
            "retry": step.retry,
            "phase": depth,
        }
        for step, deps, estimate, depth in zip(
            graph.steps, graph.deps, graph.estimates, graph.depths, strict=True
        )
    ]


def _headline(plan: Plan) -> str:
    kind = f"{plan.task_type} task, " if plan.task_type else ""
    steps = _count(len(plan.steps), "step")
    phases = _count(len(plan.phases), "phase")
    return f"Plan ({kind}mode {plan.mode}): {steps} in {phases}"


def _phase_heading(number: int, size: int, max_parallel: int | None) -> str:
    return f"Phase {number} ({phase_summary(size, max_parallel)}):"


def phase_summary(size: int, max_parallel: int | None) -> str:
    """How a phase of ``size`` steps runs: "3 steps in parallel" and the like."""
    if size == 1:
        return "1 step"
    if max_parallel == 1:
        return f"{size} steps, one at a time"
    if max_parallel is not None and size > max_parallel:
        return f"{size} steps, up to {max_parallel} in parallel"
    return f"{size} steps in parallel"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _step_line(step: PlannedStep, width: int) -> str:
    agent = f"[{step.agent}]"
    line = f"  {step.id:<{width}}  {agent:<14}  ~{format_ms(step.estimate_ms)}"
    if step.depends_on:
        line += "  after " + ", ".join(step.depends_on)
    return line


def format_ms(value: int) -> str:
    """Milliseconds as people read them: thousands separated, with the unit."""
    return f"{value:,} ms"

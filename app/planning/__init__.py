"""Planning: from a task in plain words to a checked plan of agent steps."""

from app.planning.classify import classify
from app.planning.decompose import named_layers, sub_goals
from app.planning.estimates import DEFAULT_ESTIMATE_MS, resolve_estimate
from app.planning.graph import StepGraph, critical_path, phases, remaining_path_ms
from app.planning.models import (
    STEP_ID_PATTERN,
    Agent,
    Mode,
    Plan,
    PlannedStep,
    StepSpec,
    TaskType,
)
from app.planning.planner import describe, make_plan

__all__ = [
    "DEFAULT_ESTIMATE_MS",
    "STEP_ID_PATTERN",
    "Agent",
    "Mode",
    "Plan",
    "PlannedStep",
    "StepGraph",
    "StepSpec",
    "TaskType",
    "classify",
    "critical_path",
    "describe",
    "make_plan",
    "named_layers",
    "phases",
    "remaining_path_ms",
    "resolve_estimate",
    "sub_goals",
]

"""Event types and the event as readers see it."""

from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import BaseModel


class EventType(StrEnum):
    execution_accepted = "execution.accepted"
    execution_planned = "execution.planned"
    execution_started = "execution.started"
    execution_interrupted = "execution.interrupted"
    execution_resumed = "execution.resumed"
    execution_budget_exceeded = "execution.budget_exceeded"
    execution_finished = "execution.finished"
    phase_started = "phase.started"
    phase_finished = "phase.finished"
    step_started = "step.started"
    step_log = "step.log"
    step_succeeded = "step.succeeded"
    step_failed = "step.failed"
    step_skipped = "step.skipped"
    step_timed_out = "step.timed_out"
    step_cancelled = "step.cancelled"
    step_retrying = "step.retrying"
    state_updated = "state.updated"
    state_conflict = "state.conflict"


class EventRead(BaseModel):
    """One append-only progress record; ``seq`` counts from 1 with no gap."""

    execution_id: str
    seq: int
    type: EventType
    step_id: str | None
    data: dict[str, Any]
    created_at: datetime

    @property
    def is_final(self) -> bool:
        return self.type == EventType.execution_finished

    @cached_property
    def wire(self) -> str:
        """The event as JSON, made once however many watchers send it."""
        return self.model_dump_json()

    @cached_property
    def wire_bytes(self) -> int:
        return len(self.wire.encode())

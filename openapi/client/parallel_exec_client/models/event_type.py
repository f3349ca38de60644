from enum import StrEnum


class EventType(StrEnum):
    EXECUTION_ACCEPTED = "execution.accepted"
    EXECUTION_BUDGET_EXCEEDED = "execution.budget_exceeded"
    EXECUTION_FINISHED = "execution.finished"
    EXECUTION_INTERRUPTED = "execution.interrupted"
    EXECUTION_PLANNED = "execution.planned"
    EXECUTION_RESUMED = "execution.resumed"
    EXECUTION_STARTED = "execution.started"
    PHASE_FINISHED = "phase.finished"
    PHASE_STARTED = "phase.started"
    STATE_CONFLICT = "state.conflict"
    STATE_UPDATED = "state.updated"
    STEP_CANCELLED = "step.cancelled"
    STEP_FAILED = "step.failed"
    STEP_LOG = "step.log"
    STEP_RETRYING = "step.retrying"
    STEP_SKIPPED = "step.skipped"
    STEP_STARTED = "step.started"
    STEP_SUCCEEDED = "step.succeeded"
    STEP_TIMED_OUT = "step.timed_out"

    def __str__(self) -> str:
        return str(self.value)

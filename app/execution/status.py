"""Statuses of executions, steps and runs, and the transitions each may take.

Every status change goes through ``check_transition``: an illegal one raises
``IllegalTransition`` naming both states instead of overwriting silently.
"""

from enum import StrEnum


class ExecutionStatus(StrEnum):
    accepted = "accepted"  # stored and planned, waiting for the executor
    planned = "planned"  # a dry run: the plan is stored, nothing runs
    running = "running"  # the executor is starting steps
    succeeded = "succeeded"  # every step succeeded
    failed = (
        "failed"  # a step failed and nothing else succeeded, or fail_fast stopped it
    )
    partial = "partial"  # some steps failed or were skipped, others succeeded
    cancelled = "cancelled"  # a caller cancelled it
    timed_out = "timed_out"  # the execution's own timeout ended it


class StepStatus(StrEnum):
    pending = "pending"  # waiting for its dependencies or a free slot
    running = "running"  # a run of it is under way
    retrying = "retrying"  # a run of it ended and its retry policy allows another
    succeeded = "succeeded"  # its run returned a result
    failed = "failed"  # its run failed
    timed_out = "timed_out"  # its run passed the step's timeout
    cancelled = "cancelled"  # its run was stopped by a cancel, fail_fast or timeout
    skipped = "skipped"  # it never ran: a dependency did not succeed, or it was stopped


class RunStatus(StrEnum):
    running = "running"  # the runner is carrying it out
    succeeded = "succeeded"  # the runner returned a result
    failed = "failed"  # the runner reported a failure
    timed_out = "timed_out"  # the step's timeout passed
    cancelled = "cancelled"  # stopped from outside before it finished
    interrupted = "interrupted"  # cut off by the service stopping or dying


FINISHED_EXECUTION = frozenset(
    {
        ExecutionStatus.planned,
        ExecutionStatus.succeeded,
        ExecutionStatus.failed,
        ExecutionStatus.partial,
        ExecutionStatus.cancelled,
        ExecutionStatus.timed_out,
    }
)
FINISHED_STEP = frozenset(
    set(StepStatus) - {StepStatus.pending, StepStatus.running, StepStatus.retrying}
)

_ENDINGS = FINISHED_EXECUTION - {ExecutionStatus.planned}
EXECUTION_TRANSITIONS: dict[str, frozenset[str]] = {
    ExecutionStatus.accepted: frozenset({ExecutionStatus.running}) | _ENDINGS,
    ExecutionStatus.running: _ENDINGS,
}
STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    StepStatus.pending: frozenset({StepStatus.running, StepStatus.skipped}),
    StepStatus.running: (FINISHED_STEP - {StepStatus.skipped}) | {StepStatus.retrying},
    # a stop while a step waits for its next attempt ends it with its last outcome
    StepStatus.retrying: frozenset(
        {StepStatus.running, StepStatus.failed, StepStatus.timed_out}
    ),
}
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.running: frozenset(set(RunStatus) - {RunStatus.running}),
}


class IllegalTransition(RuntimeError):
    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"illegal {kind} transition: {current} -> {target}")


def check_transition(
    kind: str, table: dict[str, frozenset[str]], current: str, target: str
) -> None:
    """Raise IllegalTransition unless ``current -> target`` is declared in table."""
    if target not in table.get(current, frozenset()):
        raise IllegalTransition(kind, current, target)

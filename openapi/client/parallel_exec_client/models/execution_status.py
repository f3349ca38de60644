from enum import StrEnum


class ExecutionStatus(StrEnum):
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"
    FAILED = "failed"
    PARTIAL = "partial"
    PLANNED = "planned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    TIMED_OUT = "timed_out"

    def __str__(self) -> str:
        return str(self.value)

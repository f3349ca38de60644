from enum import StrEnum


class RetryPolicyRetryOnItem(StrEnum):
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    TIMED_OUT = "timed_out"

    def __str__(self) -> str:
        return str(self.value)

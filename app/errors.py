"""Domain errors, each with its HTTP status; one handler renders them all."""

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "details": self.details,
            }
        }


class InvalidRequest(DomainError):
    status_code = 422
    code = "invalid_request"

    @classmethod
    def on_field(cls, field: str, problem: str, **details: Any) -> "InvalidRequest":
        """An error about one field, shaped like a validation error."""
        errors = [{"field": field, "problem": problem}]
        return cls(f"invalid request: {field}: {problem}", errors=errors, **details)


class PlanInvalid(DomainError):
    status_code = 422
    code = "plan_invalid"


class PlanTooLarge(DomainError):
    status_code = 413
    code = "plan_too_large"


class TaskTooLong(DomainError):
    status_code = 422
    code = "task_too_long"


class BodyTooLarge(DomainError):
    status_code = 413
    code = "body_too_large"


class ProfileNotFound(DomainError):
    status_code = 422
    code = "profile_not_found"


class ExecutionNotFound(DomainError):
    status_code = 404
    code = "execution_not_found"


class ExecutionConflict(DomainError):
    status_code = 409
    code = "execution_conflict"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class ProfilesFileInvalid(Exception):
    """The operator's profiles file cannot be used; the service refuses to start."""


class IdempotencyConflict(DomainError):
    status_code = 409
    code = "idempotency_key_reused"


class ShuttingDown(DomainError):
    status_code = 503
    code = "shutting_down"


class DatabaseInUse(Exception):
    """Another process holds the SQLite file; the service refuses to start."""

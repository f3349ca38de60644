"""What the Python API raises, the same in-process and against a server."""

from typing import Any


class ParallelExecError(Exception):
    """Base of every error the Python API raises."""


class RequestRejected(ParallelExecError):
    """The service refused the request; ``code`` and ``details`` say why.

    ``status`` is the HTTP status the service answers with (also in-process,
    where no HTTP is involved): 4xx for a request to change, 503 while the
    service shuts down.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class ServiceUnreachable(ParallelExecError):
    """The service could not be reached, or stopped answering for too long."""

"""Structured logs: a dotted event name, then the facts as key=value fields.

The execution and step a piece of work belongs to are bound once with ``bind``;
every record logged in that context carries them.
"""

import logging
from contextvars import ContextVar
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_BOUND: ContextVar[dict[str, Any] | None] = ContextVar("log_fields", default=None)


def bind(**fields: Any) -> None:
    """Add fields to every record logged from this context and the tasks it starts."""
    _BOUND.set({**(_BOUND.get() or {}), **fields})


class _BoundFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_BOUND.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return line


def configure(level: str) -> None:
    """Send the service's logs to stderr as one key=value line each."""
    handler = logging.StreamHandler()
    handler.addFilter(_BoundFields())
    handler.setFormatter(
        KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger("app")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False

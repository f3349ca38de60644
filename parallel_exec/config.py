"""ExecutorConfig: how to plan and run one task, in the Python API's words."""

from dataclasses import dataclass
from typing import Any

from app.planning.models import Mode, RetryPolicy


@dataclass
class ExecutorConfig:
    """How to plan and run a task; None leaves a setting to the service.

    ``enable_parallel=False`` runs one step at a time. ``dry_run=True`` only
    plans. ``mode`` is ``auto``, ``chain`` or ``decompose``. ``profile`` names
    the runner profile that carries out the steps. ``max_tokens`` and
    ``max_cost`` are the execution's budget; ``state_merge`` gives shared-state
    keys their merge rule (``{"findings": "append"}``).
    """

    fail_fast: bool = True
    enable_parallel: bool = True
    dry_run: bool = False
    mode: Mode | str = Mode.auto
    max_parallel: int | None = None
    step_timeout_s: float | None = None
    execution_timeout_s: float | None = None
    profile: str | None = None
    retry: RetryPolicy | dict[str, Any] | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    state_merge: dict[str, str] | None = None

    def request_config(self) -> dict[str, Any]:
        """The ``config`` object of a ``POST /executions`` body."""
        config: dict[str, Any] = {
            "mode": str(self.mode),
            "parallel": self.enable_parallel,
            "dry_run": self.dry_run,
            "fail_fast": self.fail_fast,
        }
        optional = {
            "max_parallel": self.max_parallel,
            "step_timeout_s": self.step_timeout_s,
            "execution_timeout_s": self.execution_timeout_s,
            "profile": self.profile,
            "retry": _plain(self.retry),
            "budget": self._budget(),
            "state_merge": self.state_merge,
        }
        config.update(
            {key: value for key, value in optional.items() if value is not None}
        )
        return config

    def _budget(self) -> dict[str, Any] | None:
        budget = {"max_tokens": self.max_tokens, "max_cost": self.max_cost}
        given = {key: value for key, value in budget.items() if value is not None}
        return given or None


def _plain(retry: RetryPolicy | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(retry, RetryPolicy):
        return retry.model_dump(mode="json")
    return retry

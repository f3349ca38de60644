"""ExecutionReport: what ``execute`` returns once an execution has finished."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.execution.schemas import ExecutionRead, PlanRead, RunRead
from app.execution.status import ExecutionStatus, RunStatus
from app.planning.planner import format_ms


@dataclass
class ExecutionReport:
    """A finished (or dry-run) execution with its figures, plan, runs and outputs.

    The figures are the service's measured ones (see ``ExecutionResult``); a dry
    run has run nothing, so its measured figures are zero and only
    ``estimated_savings_ms`` says what running in parallel would save.
    ``message`` is the plan phase by phase (which steps run in parallel), then,
    after a real run, the figures.
    """

    execution: ExecutionRead
    plan: PlanRead
    runs: list[RunRead] = field(default_factory=list)

    @property
    def execution_id(self) -> str:
        return self.execution.id

    @property
    def status(self) -> ExecutionStatus:
        return self.execution.status

    @property
    def succeeded(self) -> bool:
        """True for a run that succeeded and for a dry run that was planned."""
        return self.status in (ExecutionStatus.succeeded, ExecutionStatus.planned)

    @property
    def reason(self) -> str | None:
        return self.execution.reason

    @property
    def dry_run(self) -> bool:
        return self.execution.dry_run

    @property
    def total_time_ms(self) -> int:
        return self._figure("total_time_ms")

    @property
    def agent_time_ms(self) -> int:
        return self._figure("agent_time_ms")

    @property
    def measured_savings_ms(self) -> int:
        return self._figure("measured_savings_ms")

    @property
    def parallel_groups_executed(self) -> int:
        return self._figure("parallel_groups_executed")

    @property
    def speedup(self) -> float | None:
        result = self.execution.result
        return result.speedup if result else None

    @property
    def total_tokens(self) -> int:
        return self._figure("total_tokens")

    @property
    def cost(self) -> float | None:
        """What the runs cost, when the profile's prices gave one."""
        result = self.execution.result
        return result.cost if result else None

    @property
    def estimated_savings_ms(self) -> int:
        return self.execution.estimated_savings_ms

    @property
    def critical_path_taken(self) -> list[str]:
        result = self.execution.result
        return list(result.critical_path_taken) if result else []

    @property
    def steps_by_status(self) -> dict[str, int]:
        result = self.execution.result
        if result is not None:
            return dict(result.steps_by_status)
        return dict(Counter(str(step.status) for step in self.plan.steps))

    @property
    def outputs(self) -> dict[str, Any]:
        """Each succeeded step's output, by step id."""
        return {
            run.step_id: run.output
            for run in self.runs
            if run.status == RunStatus.succeeded
        }

    @property
    def message(self) -> str:
        lines = [f"execution {self.execution_id} {self.status}", self.plan.description]
        if not self.dry_run:
            lines.append(self.figures())
        return "\n".join(lines)

    def figures(self) -> str:
        """The result figures as a few lines of text."""
        speedup = f"{self.speedup:.2f}x" if self.speedup is not None else "n/a"
        lines = [
            f"Status: {self.status}" + (f" ({self.reason})" if self.reason else ""),
            f"Wall time {format_ms(self.total_time_ms)}, agent time "
            f"{format_ms(self.agent_time_ms)}, measured savings "
            f"{format_ms(self.measured_savings_ms)}, speed-up {speedup}",
            f"Parallel groups executed: {self.parallel_groups_executed}; "
            f"estimated savings {format_ms(self.estimated_savings_ms)}",
        ]
        result = self.execution.result
        if result is not None and (result.total_tokens or result.cost is not None):
            cost = f"; cost {result.cost:.6g}" if result.cost is not None else ""
            lines.append(
                f"Tokens: {result.input_tokens:,} in, {result.output_tokens:,} out"
                + cost
            )
        if self.critical_path_taken:
            lines.append(
                "Critical path taken: " + " -> ".join(self.critical_path_taken)
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The execution, its plan and its runs as JSON-ready data."""
        execution = self.execution.model_dump(mode="json", exclude={"plan"})
        return {
            "execution": execution,
            "plan": self.plan.model_dump(mode="json"),
            "runs": [run.model_dump(mode="json") for run in self.runs],
        }

    def _figure(self, name: str) -> int:
        result = self.execution.result
        return getattr(result, name) if result else 0

"""What callers send and read: execution requests, executions, runs, pages."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.events.types import EventRead
from app.execution.state import MergeRule
from app.execution.status import ExecutionStatus, RunStatus, StepStatus
from app.planning.models import (
    Agent,
    Mode,
    Plan,
    PlannedStep,
    RetryPolicy,
    StepSpec,
    TaskType,
    Text,
)

StateKey = Annotated[Text, StringConstraints(min_length=1, max_length=200)]


class Budget(BaseModel):
    """The most an execution may consume; once over, no further step starts."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: StrictInt | None = Field(
        default=None, ge=1, description="Input plus output tokens of all runs."
    )
    max_cost: StrictFloat | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Cost of all runs, in the unit of the profile's prices.",
    )

    @model_validator(mode="after")
    def sets_a_limit(self) -> "Budget":
        if self.max_tokens is None and self.max_cost is None:
            raise ValueError("set max_tokens, max_cost or both")
        return self


class ExecutionConfig(BaseModel):
    """How to plan and run a task; omitted fields take the server's defaults."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(default=Mode.auto, description="auto, chain or decompose.")
    parallel: StrictBool = Field(
        default=True, description="False runs one step at a time."
    )
    dry_run: StrictBool = Field(
        default=False, description="Plan and store, run nothing."
    )
    fail_fast: StrictBool = Field(
        default=True, description="Stop everything at the first failed step."
    )
    max_parallel: StrictInt | None = Field(default=None, ge=1)
    step_timeout_s: StrictFloat | None = Field(default=None, gt=0)
    execution_timeout_s: StrictFloat | None = Field(default=None, gt=0)
    profile: Text | None = Field(default=None, min_length=1, max_length=64)
    retry: RetryPolicy | None = Field(
        default=None,
        description="Retry policy of every step that does not set its own; "
        "null or absent for the server's default policy.",
    )
    budget: Budget | None = Field(
        default=None, description="Tokens and/or cost after which no step starts."
    )
    state_merge: dict[StateKey, MergeRule] = Field(
        default_factory=dict,
        max_length=100,
        description="The merge rule of shared-state keys: replace (the default "
        "for any key not named) or append.",
    )

    @field_validator("state_merge", mode="before")
    @classmethod
    def no_rules_when_null(cls, rules: Any) -> Any:
        return {} if rules is None else rules


class PlanInput(BaseModel):
    """An explicit plan: the planner is skipped and the steps are only checked."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StepSpec]


class ExecutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: Text = Field(min_length=1, description="The task in plain words.")
    config: ExecutionConfig = Field(default_factory=ExecutionConfig)
    plan: PlanInput | None = None

    @field_validator("task")
    @classmethod
    def task_has_words(cls, task: str) -> str:
        if not task.strip():
            raise ValueError("must not be blank")
        return task


class ExecutionResult(BaseModel):
    """Measured figures of a finished execution."""

    status: ExecutionStatus
    total_time_ms: int = Field(description="Wall time from start to finish.")
    agent_time_ms: int = Field(description="Sum of the durations of all runs.")
    measured_savings_ms: int = Field(description="Agent time minus wall time.")
    speedup: float | None = Field(description="Agent time over wall time.")
    parallel_groups_executed: int = Field(description="Phases in which a step ran.")
    critical_path_taken: list[str]
    estimated_savings_ms: int
    runs_by_status: dict[str, int]
    steps_by_status: dict[str, int]
    input_tokens: int = Field(default=0, description="Input tokens of all runs.")
    output_tokens: int = Field(default=0, description="Output tokens of all runs.")
    total_tokens: int = 0
    cost: float | None = Field(
        default=None, description="Cost of the runs that reported one; null if none."
    )


class StepRead(PlannedStep):
    status: StepStatus


class PlanRead(BaseModel):
    execution_id: str
    mode: Mode
    task_type: TaskType | None
    steps: list[StepRead]
    phases: list[list[str]]
    critical_path: list[str]
    critical_path_ms: int
    sequential_ms: int
    parallel_ms: int
    estimated_savings_ms: int
    max_parallel: int | None = Field(
        default=None, description="Most steps run at once: 1 when parallel is off."
    )
    description: str = Field(description="The plan as a readable phase listing.")


class ExecutionRead(BaseModel):
    id: str
    task: str
    task_type: TaskType | None
    status: ExecutionStatus
    dry_run: bool
    profile: str
    config: ExecutionConfig
    reason: str | None = Field(description="Why it ended as it did, when not plain.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_seq: int
    estimated_savings_ms: int
    result: ExecutionResult | None
    plan: PlanRead | None = Field(
        default=None, description="Included when the execution is created."
    )


class ExecutionPage(BaseModel):
    items: list[ExecutionRead]
    total: int
    limit: int
    offset: int


class RunRead(BaseModel):
    id: str
    step_id: str
    attempt: int
    agent: Agent
    runner: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    output: Any | None
    error: str | None
    details: dict[str, Any] | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


class StateWriterRead(BaseModel):
    step_id: str
    run_id: str
    attempt: int
    at: datetime


class StateEntryRead(BaseModel):
    """One key of an execution's shared state, with who wrote it last."""

    key: str
    value: Any
    version: int = Field(description="1 for the first write, then one more per write.")
    merge: MergeRule
    updated_by_step: str
    updated_by_run: str
    updated_by_attempt: int | None
    updated_at: datetime
    writers: list[StateWriterRead] | None = Field(
        default=None,
        description="An append key's list: who wrote each item, in order.",
    )


class EventPage(BaseModel):
    items: list[EventRead]
    next_after_seq: int = Field(description="Pass as after_seq to read on.")
    finished: bool = Field(
        description="True when the execution has finished and no event is left."
    )


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorDetail


def plan_figures(plan: Plan) -> dict[str, Any]:
    """The plan's figures as stored on the execution row."""
    return plan.model_dump(include=_PLAN_FIGURES, mode="json")


_PLAN_FIGURES = {
    "mode",
    "task_type",
    "phases",
    "critical_path",
    "critical_path_ms",
    "sequential_ms",
    "parallel_ms",
    "estimated_savings_ms",
    "max_parallel",
}

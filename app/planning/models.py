"""The words of planning: agents, task types, modes, steps and plans."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
)

STEP_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


def _storable(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("must be valid Unicode (no lone surrogates)") from error
    return text


Text = Annotated[str, AfterValidator(_storable)]
StepId = Annotated[str, Field(pattern=STEP_ID_PATTERN)]
"""Text every database can store: valid Unicode without NUL characters."""


class Agent(StrEnum):
    explore = "explore"
    researcher = "researcher"
    architect = "architect"
    builder = "builder"
    ui = "ui"
    integrations = "integrations"
    refactor = "refactor"
    quality = "quality"
    security = "security"
    docs = "docs"
    reviewer = "reviewer"


class TaskType(StrEnum):
    implement = "implement"
    extend = "extend"
    fix = "fix"
    refactor = "refactor"
    research = "research"
    test = "test"
    docs = "docs"
    security = "security"
    ui = "ui"
    integration = "integration"


class Mode(StrEnum):
    """How the planner builds a plan."""

    auto = "auto"  # decompose when the task has two or more sub-goals, else chain
    chain = "chain"  # the template of the task type
    decompose = "decompose"  # one builder branch per sub-goal
    explicit = "explicit"  # the caller gave the steps; the planner only checks them


RetryOutcome = Literal["failed", "timed_out", "interrupted"]


class RetryPolicy(BaseModel):
    """When a step is run again, and how long to wait before each new attempt.

    The wait before attempt n+1 is ``backoff_s * backoff_multiplier ** (n - 1)``,
    capped at ``backoff_max_s``, then shortened by a random share of up to
    ``jitter`` so that many retries do not start in step. A cancel is never
    retried; an interruption is a run cut off by the service stopping or dying.
    """

    model_config = ConfigDict(extra="forbid")

    max_attempts: StrictInt = Field(
        default=3, ge=1, description="Runs allowed in all, the first one included."
    )
    retry_on: list[RetryOutcome] = Field(
        default_factory=lambda: ["interrupted"],
        max_length=3,
        description="Outcomes worth another attempt: failed, timed_out, interrupted.",
    )
    backoff_s: StrictFloat = Field(default=1.0, ge=0, le=3600, allow_inf_nan=False)
    backoff_multiplier: StrictFloat = Field(
        default=2.0, ge=1, le=10, allow_inf_nan=False
    )
    backoff_max_s: StrictFloat = Field(default=60.0, ge=0, le=3600, allow_inf_nan=False)
    jitter: StrictFloat = Field(
        default=0.5,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Up to this share of a wait is random.",
    )

    @field_validator("retry_on")
    @classmethod
    def each_outcome_once(cls, outcomes: list[str]) -> list[str]:
        if len(set(outcomes)) != len(outcomes):
            raise ValueError("name each outcome once")
        return outcomes

    def delay_s(self, attempt: int, random_share: float) -> float:
        """The wait after a run numbered ``attempt``; random_share is in [0, 1)."""
        base = min(
            self.backoff_max_s,
            self.backoff_s * self.backoff_multiplier ** (attempt - 1),
        )
        return base * (1 - self.jitter * random_share)

    def allows(self, outcome: str, attempt: int) -> bool:
        """Whether a run numbered ``attempt`` that ended in outcome gets another."""
        return outcome in self.retry_on and attempt < self.max_attempts


class StepSpec(BaseModel):
    """One step as a caller or a template describes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        pattern=STEP_ID_PATTERN, description="Stable slug, unique in a plan."
    )
    agent: Agent
    title: Text = Field(default="", max_length=200)
    instructions: Text = Field(default="", max_length=20_000)
    # at most every other step: PX_MAX_PLAN_STEPS bounds it, this bounds parsing
    depends_on: list[StepId] = Field(default_factory=list, max_length=100_000)
    estimate_ms: StrictInt | None = Field(default=None, ge=0, le=7 * 24 * 3600 * 1000)
    timeout_s: StrictFloat | None = Field(default=None, gt=0)
    retry: RetryPolicy | None = Field(
        default=None, description="Overrides the execution's retry policy."
    )


class PlannedStep(BaseModel):
    """A step of a checked plan, with its resolved estimate and its phase."""

    id: str
    agent: Agent
    title: str
    instructions: str
    depends_on: list[str]
    estimate_ms: int
    timeout_s: float | None
    retry: RetryPolicy | None = None
    phase: int = Field(
        description="Depth in the graph: 0 for steps with no dependency."
    )


class Plan(BaseModel):
    """A checked dependency graph of steps with its phases and estimated figures."""

    mode: Mode
    task_type: TaskType | None
    steps: list[PlannedStep] = Field(description="In a topological order.")
    phases: list[list[str]] = Field(description="Step ids at each depth of the graph.")
    critical_path: list[str]
    critical_path_ms: int
    sequential_ms: int = Field(description="Sum of all estimates: one step at a time.")
    parallel_ms: int = Field(description="Estimated wall time under max_parallel.")
    estimated_savings_ms: int
    max_parallel: int | None = Field(
        default=None,
        description="Most steps run at once: 1 when parallel is off.",
    )

"""The runner interface: how one agent's step is carried out.

A runner has one required method, ``run``. The executor calls it with the step's
context and a progress sink, and enforces timeouts and cancels by cancelling the
task that awaits it: a runner must let ``asyncio.CancelledError`` through after
releasing what it holds (a command runner kills its process group first).

A runner reports the outcome by returning a ``StepResult`` (success) or raising
``RunFailed`` (failure, with facts such as an exit code in ``details``). Any other
exception is a failure too; its message is recorded. Either may carry the
``Usage`` of the run (tokens, and a cost when the runner knows the prices); it is
stored with the run, summed per execution and counted against its budget.

A runner never puts a secret (an API key read from the environment) in an
output, an error, a detail or a progress line: all of those are stored and
streamed.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class StepContext:
    """Everything a step receives: the task, its instructions, upstream outputs."""

    execution_id: str
    run_id: str
    attempt: int
    step_id: str
    agent: str
    title: str
    instructions: str
    task: str
    upstream: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    estimate_ms: int = 0
    timeout_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "step_id": self.step_id,
            "agent": self.agent,
            "title": self.title,
            "instructions": self.instructions,
            "task": self.task,
            "upstream": self.upstream,
            "state": self.state,
            "timeout_s": self.timeout_s,
        }

    def prompt(self) -> str:
        """The step as plain text, for agents that read a prompt."""
        lines = [
            f"Task: {self.task}",
            f"Step: {self.step_id} ({self.agent}) {self.title}".rstrip(),
        ]
        if self.instructions:
            lines += ["", "Instructions:", self.instructions]
        for step_id, output in self.upstream.items():
            text = output if isinstance(output, str) else json.dumps(output, indent=2)
            lines += ["", f"Output of {step_id}:", text]
        if self.state:
            lines += ["", "Shared state:", json.dumps(self.state, indent=2)]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Usage:
    """What a run consumed: tokens, and a cost when the prices are known."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class StepResult:
    output: Any = None
    state_updates: dict[str, Any] = field(default_factory=dict)
    usage: Usage | None = None


class RunFailed(Exception):
    def __init__(self, message: str, *, usage: Usage | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details
        self.usage = usage


class Progress(Protocol):
    async def log(self, line: str) -> None:
        """Record one line of progress as a step.log event."""


class Runner(Protocol):
    kind: str

    async def run(self, context: StepContext, progress: Progress) -> StepResult:
        """Carry out one step; return its result or raise RunFailed."""

"""How the CLI shows plans, progress and results in a terminal.

On a terminal, a run shows a progress bar per phase and a line per step as it
changes; when output goes to a file or a pipe, the same lines are printed plain,
one per event worth telling, with the seconds since the watch began.
"""

from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from app.events.types import EventRead, EventType
from app.execution.schemas import ExecutionPage, PlanRead, StepRead
from app.planning.planner import format_ms, phase_summary
from parallel_exec.results import ExecutionReport

STEP_ENDS = {
    EventType.step_succeeded: "succeeded",
    EventType.step_failed: "failed",
    EventType.step_timed_out: "timed out",
    EventType.step_cancelled: "cancelled",
    EventType.step_skipped: "skipped",
}
MARKS = {
    "started": "[cyan]>[/]",
    "succeeded": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "timed out": "[red]✗[/]",
    "cancelled": "[yellow]-[/]",
    "skipped": "[dim]-[/]",
    "retrying": "[yellow]↻[/]",
}


def console() -> Console:
    """A console that writes plain text, wide enough, when not on a terminal."""
    plain = Console()
    if plain.is_terminal:
        return _Console(highlight=False)
    return _Console(highlight=False, no_color=True, width=120, soft_wrap=True)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away: raise, so that the command ends as it should.

        Rich's own answer, SystemExit from inside the event loop, would leave an
        in-process run neither cancelled nor closed.
        """
        self.quiet = True
        raise BrokenPipeError


def printable(text: str) -> str:
    """Text from callers or agents made safe to print on a terminal.

    Control characters (an escape sequence, a carriage return) become U+FFFD;
    line breaks and tabs become spaces.
    """
    return "".join(
        " " if char in "\n\t" else char if char.isprintable() else "\ufffd"
        for char in text
    )


def plan_table(plan: PlanRead, *, with_status: bool = False) -> Table:
    """The plan's phases and steps, one row per step, with estimates."""
    table = Table(box=box.SIMPLE_HEAD, title=_plan_title(plan), title_justify="left")
    table.add_column("Phase")
    table.add_column("Step")
    table.add_column("Agent")
    table.add_column("Estimate", justify="right")
    if with_status:
        table.add_column("Status")
    table.add_column("After")
    by_id = {step.id: step for step in plan.steps}

    for number, ids in enumerate(plan.phases, 1):
        for index, step_id in enumerate(ids):
            step = by_id[step_id]
            row = [
                _phase_label(number, len(ids), plan.max_parallel) if index == 0 else "",
                step.id,
                str(step.agent),
                format_ms(step.estimate_ms),
            ]
            if with_status:
                row.append(str(step.status))
            row.append(", ".join(step.depends_on))
            table.add_row(*row, end_section=index == len(ids) - 1)
    return table


def plan_figures(plan: PlanRead) -> list[str]:
    path = " -> ".join(plan.critical_path)
    return [
        f"Critical path ({format_ms(plan.critical_path_ms)}): {path}",
        f"Estimated: sequential {format_ms(plan.sequential_ms)}, "
        f"parallel {format_ms(plan.parallel_ms)}, "
        f"savings {format_ms(plan.estimated_savings_ms)}",
    ]


def show_table(out: Console, table: Table) -> None:
    """Print a table without the blanks that pad its lines to full width."""
    with out.capture() as captured:
        out.print(table)
    for line in captured.get().splitlines():
        out.file.write(line.rstrip() + "\n")
    out.file.flush()


def show_plan(out: Console, plan: PlanRead, *, with_status: bool = False) -> None:
    show_table(out, plan_table(plan, with_status=with_status))
    for line in plan_figures(plan):
        out.print(line)


def show_report(out: Console, report: ExecutionReport) -> None:
    """The result figures at the end of a run."""
    out.print()
    for line in report.figures().splitlines():
        out.print(line, markup=False)


def executions_table(page: ExecutionPage) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("Execution", no_wrap=True, min_width=36)
    for name in ("Status", "Created", "Wall time", "Task"):
        table.add_column(name, justify="right" if name == "Wall time" else "left")
    for execution in page.items:
        wall = format_ms(execution.result.total_time_ms) if execution.result else ""
        created = execution.created_at.strftime("%Y-%m-%d %H:%M:%S")
        task = printable(execution.task)
        task = task if len(task) <= 60 else task[:57] + "..."
        # the task is the user's text: shown as written, never read as markup
        table.add_row(execution.id, str(execution.status), created, wall, Text(task))
    shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "0"
    table.caption = f"{shown} of {page.total}"
    return table


class ProgressView:
    """Shows an execution's events as they come: bars on a terminal, else lines."""

    def __init__(self, out: Console, plan: PlanRead) -> None:
        self.out = out
        self.plan = plan
        self.steps: dict[str, StepRead] = {step.id: step for step in plan.steps}
        self.origin: datetime | None = None  # when the first event was written
        self.now: datetime | None = None
        self.progress: Progress | None = None
        self.phase_tasks: dict[int, TaskID] = {}

    def __enter__(self) -> "ProgressView":
        if self.out.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.out,
            )
            for number, ids in enumerate(self.plan.phases, 1):
                label = _phase_label(number, len(ids), self.plan.max_parallel)
                self.phase_tasks[number - 1] = self.progress.add_task(
                    f"Phase {label}", total=len(ids)
                )
            self.progress.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def handle(self, event: EventRead) -> None:
        """Show one event, if it is one a person watching wants to see."""
        self.origin = self.origin or event.created_at
        self.now = event.created_at
        kind = event.type
        if kind == EventType.step_started:
            self._step_line(event.step_id, "started", _attempt(event.data))
        elif kind in STEP_ENDS:
            self._step_line(event.step_id, STEP_ENDS[kind], _took(event.data))
            self._advance(event.step_id)
        elif kind == EventType.step_retrying:
            detail = f"attempt {event.data.get('next_attempt')} in " + _seconds(
                event.data.get("delay_s", 0) * 1000
            )
            self._step_line(event.step_id, "retrying", detail)
        elif kind in (
            EventType.execution_started,
            EventType.execution_resumed,
            EventType.execution_interrupted,
        ):
            self._line(f"execution {kind.value.split('.')[1]}")
        elif kind == EventType.execution_budget_exceeded:
            self._line(
                printable(f"execution stops starting steps: {event.data.get('reason')}")
            )
        elif kind == EventType.state_conflict:
            data = event.data
            detail = (
                f"conflict on state key {data.get('key')!r}: kept "
                f"{data.get('kept_step')}, discarded {data.get('discarded_step')}"
            )
            self._step_line(event.step_id, "state", detail)
        elif kind == EventType.execution_finished:
            status = event.data.get("status")
            reason = event.data.get("reason")
            text = f"execution {status}" + (f": {reason}" if reason else "")
            self._line(printable(text))

    def _step_line(self, step_id: str | None, what: str, detail: str) -> None:
        mark = MARKS.get(what, " ") if self.out.is_terminal else ""
        width = max((len(step) for step in self.steps), default=0)
        text = printable(f"{step_id or '':<{width}}  {what:<9}  {detail}".rstrip())
        # the detail may hold an agent's error text: only the mark is markup
        self._line(f"{mark} {escape(text)}" if mark else text, markup=bool(mark))

    def _line(self, text: str, *, markup: bool = False) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=markup, highlight=False)
        else:
            # seconds since the first event shown, as the service recorded them:
            # the same for a replay as live
            elapsed = 0.0
            if self.now is not None and self.origin is not None:
                elapsed = (self.now - self.origin).total_seconds()
            self.out.print(f"[{elapsed:7.2f}s] {text}", markup=False, highlight=False)

    def _advance(self, step_id: str | None) -> None:
        step = self.steps.get(step_id or "")
        if self.progress is not None and step is not None:
            self.progress.advance(self.phase_tasks[step.phase])


def _plan_title(plan: PlanRead) -> str:
    kind = f"{plan.task_type} task, " if plan.task_type else ""
    steps = len(plan.steps)
    phases = len(plan.phases)
    return (
        f"Plan ({kind}mode {plan.mode}): {steps} step{'s' * (steps != 1)} "
        f"in {phases} phase{'s' * (phases != 1)}"
    )


def _phase_label(number: int, size: int, max_parallel: int | None) -> str:
    """ "3" for a phase of one step, else "3 (4 steps in parallel)" and the like."""
    if size == 1:
        return f"{number}"
    return f"{number} ({phase_summary(size, max_parallel)})"


def _attempt(data: dict[str, Any]) -> str:
    attempt = data.get("attempt", 1)
    return f"attempt {attempt}" if attempt and attempt > 1 else ""


def _took(data: dict[str, Any]) -> str:
    duration = data.get("duration_ms")
    detail = _seconds(duration) if duration is not None else ""
    error = data.get("error") or data.get("reason")
    return f"{detail}  {error}".strip() if error else detail


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.2f} s"

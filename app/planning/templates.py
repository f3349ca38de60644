"""One plan template per task type, drafted as steps with their dependencies.

Each step depends on what it needs, not on a whole phase: docs follow the design,
each quality step follows the work it tests, and the reviewer joins every leaf.
With sub-goals (mode decompose) the work is one branch per sub-goal; exploration,
design and docs stay shared.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.planning.models import Agent, StepSpec, TaskType

GOAL_SLUG_CHARS = 32
TITLE_GOAL_CHARS = 80
QUOTED_TASK_CHARS = 12_000


@dataclass(frozen=True)
class Goal:
    """A sub-goal and the slug that names its steps."""

    text: str
    slug: str


@dataclass(frozen=True)
class Lane:
    """A kind of work step and the quality step that tests it."""

    agent: Agent
    name: str  # id suffix of the work step in chain mode
    label: str  # names its quality step: quality-{label}
    title: str
    check_title: str
    brief: str


BACKEND = Lane(
    agent=Agent.builder,
    name="backend",
    label="backend",
    title="Build the backend",
    check_title="Test the backend",
    brief="Write the server-side code the design calls for, in the code base's style.",
)
INTERFACE = Lane(
    agent=Agent.ui,
    name="frontend",
    label="ui",
    title="Build the user interface",
    check_title="Test the user interface",
    brief="Build the screens, forms and components the design calls for.",
)
INTEGRATIONS = Lane(
    agent=Agent.integrations,
    name="api",
    label="integrations",
    title="Connect the external services",
    check_title="Test the integrations",
    brief="Connect the external services and webhooks, with retries and clear errors.",
)
RESTRUCTURE = Lane(
    agent=Agent.refactor,
    name="code",
    label="regression",
    title="Restructure the code",
    check_title="Check for regressions",
    brief="Restructure the code to the planned shape without changing its behaviour.",
)


def fix_lane(agent: Agent) -> Lane:
    """The lane that fixes the defect, carried out by the given agent."""
    return Lane(
        agent=agent,
        name="fix",
        label="fix",
        title="Fix the defect",
        check_title="Prove the fix with a regression test",
        brief="Fix the cause that exploration found, with the smallest sound change.",
    )


EXPLORE: dict[str, tuple[str, str]] = {
    "domain": (
        "Map the domain",
        "Map the code this task touches: modules, data, entry points.",
    ),
    "tests": (
        "Survey the tests",
        "Survey the existing tests and fixtures this task will use or change.",
    ),
    "patterns": (
        "Find the patterns",
        "Find the conventions and similar features the new code should follow.",
    ),
    "current": (
        "Map the current behaviour",
        "Map how the feature being extended works today, and its limits.",
    ),
    "cause": (
        "Find the cause",
        "Reproduce the defect and locate its cause; note how to trigger it.",
    ),
    "components": (
        "Survey the components",
        "Survey the screens, components and styles this task touches.",
    ),
    "codebase": (
        "Map the constraints",
        "Map what in the code base constrains the options being researched.",
    ),
    "attack-surface": (
        "Map the attack surface",
        "Map the inputs, trust boundaries and secrets this task concerns.",
    ),
    "dependencies": (
        "Survey the dependencies",
        "List the dependencies involved and their known vulnerabilities.",
    ),
}


class Draft:
    """Steps of a plan being drafted, with ids kept unique."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.steps: list[StepSpec] = []
        self._taken: set[str] = set()

    def add(
        self,
        agent: Agent,
        name: str,
        title: str,
        brief: str,
        after: Sequence[str] = (),
        goal: Goal | None = None,
    ) -> str:
        """Add a step named {agent}-{name} and return its id."""
        step_id = self._unique(f"{agent}-{name}")
        lines = [brief, f"Sub-goal: {goal.text}" if goal else "", self._quoted_task()]
        self.steps.append(
            StepSpec(
                id=step_id,
                agent=agent,
                title=title,
                instructions="\n".join(line for line in lines if line),
                depends_on=list(after),
            )
        )
        return step_id

    def leaves(self) -> list[str]:
        """Ids of the steps no other step depends on, in draft order."""
        needed = {dep for step in self.steps for dep in step.depends_on}
        return [step.id for step in self.steps if step.id not in needed]

    def _unique(self, step_id: str) -> str:
        candidate, n = step_id, 1
        while candidate in self._taken:
            n += 1
            candidate = f"{step_id}-{n}"
        self._taken.add(candidate)
        return candidate

    def _quoted_task(self) -> str:
        task = self.task.strip()
        if len(task) > QUOTED_TASK_CHARS:
            task = task[:QUOTED_TASK_CHARS] + " ..."
        return f"Task: {task}"


def draft_steps(
    task: str,
    task_type: TaskType,
    goals: Sequence[str] = (),
    layers: frozenset[Agent] = frozenset(),
) -> list[StepSpec]:
    """The template's steps for a task; one branch per sub-goal when goals are given."""
    draft = Draft(task)
    TEMPLATES[task_type](draft, to_goals(goals), layers)
    return draft.steps


def to_goals(texts: Sequence[str]) -> list[Goal]:
    """Goals with slugs for step ids: lowercase, at most GOAL_SLUG_CHARS long."""
    return [Goal(text, slug(text) or f"goal-{n}") for n, text in enumerate(texts, 1)]


def slug(text: str) -> str:
    """Lowercase words joined by hyphens, cut at a word to GOAL_SLUG_CHARS."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    kept = ""
    for word in words:
        joined = f"{kept}-{word}" if kept else word
        if len(joined) > GOAL_SLUG_CHARS:
            return kept or word[:GOAL_SLUG_CHARS]
        kept = joined
    return kept


# shared stages


def explore(draft: Draft, *names: str) -> list[str]:
    """Explore steps that run at once, one per named angle."""
    return [draft.add(Agent.explore, name, *EXPLORE[name]) for name in names]


def design(draft: Draft, title: str, after: list[str]) -> str:
    """The architect's step, once exploration is done."""
    brief = (
        "Decide the design: modules, interfaces and data, and how the work splits "
        "between the builders."
    )
    return draft.add(Agent.architect, "design", title, brief, after)


def build_and_check(
    draft: Draft, lanes: Sequence[Lane], goals: list[Goal], after: list[str]
) -> list[str]:
    """Work steps per lane (and per goal), each followed by its quality step."""
    work = [
        (lane, goal, _work(draft, lane, goal, after))
        for goal in goals or [None]
        for lane in lanes
    ]
    return [_check(draft, lanes, lane, goal, step) for lane, goal, step in work]


def document(draft: Draft, after: list[str]) -> str:
    """The docs step, which needs the design rather than the built code."""
    brief = "Document the change for its users and maintainers, from the design."
    return draft.add(Agent.docs, "update", "Document the change", brief, after)


def review(draft: Draft) -> str:
    """The reviewer's step, joining every leaf of the draft."""
    brief = "Review the whole change against the task: correctness, tests and docs."
    leaves = draft.leaves()
    return draft.add(Agent.reviewer, "final", "Review the change", brief, leaves)


def _work(draft: Draft, lane: Lane, goal: Goal | None, after: list[str]) -> str:
    if goal is None:
        return draft.add(lane.agent, lane.name, lane.title, lane.brief, after)
    title = _titled(lane.title, goal)
    return draft.add(lane.agent, goal.slug, title, lane.brief, after, goal)


def _check(
    draft: Draft, lanes: Sequence[Lane], lane: Lane, goal: Goal | None, work: str
) -> str:
    brief = f"Write and run the tests for {work}; report what fails."
    if goal is None:
        return draft.add(Agent.quality, lane.label, lane.check_title, brief, [work])

    name = goal.slug if lane is lanes[0] else f"{goal.slug}-{lane.label}"
    title = _titled(lane.check_title, goal)
    return draft.add(Agent.quality, name, title, brief, [work], goal)


def _titled(prefix: str, goal: Goal) -> str:
    return f"{prefix}: {_short(goal.text)}"


def _short(text: str) -> str:
    if len(text) <= TITLE_GOAL_CHARS:
        return text
    return text[: TITLE_GOAL_CHARS - 3].rstrip() + "..."


def _per_goal(
    draft: Draft,
    agent: Agent,
    prefix: str,
    chain: Sequence[tuple[str, str, str]],
    goals: list[Goal],
    after: list[str],
) -> list[str]:
    if not goals:
        return [draft.add(agent, *fixed, after) for fixed in chain]
    brief = chain[0][2]
    return [
        draft.add(agent, goal.slug, _titled(prefix, goal), brief, after, goal)
        for goal in goals
    ]


def _lanes(lead: Lane, layers: frozenset[Agent]) -> list[Lane]:
    others = (BACKEND, INTERFACE, INTEGRATIONS)
    return [lead, *(lane for lane in others if lane.agent in layers and lane != lead)]


# templates, one per task type


def _implement(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Explore three ways, design, build the named layers, test, document, review."""
    explored = explore(draft, "domain", "tests", "patterns")
    designed = design(draft, "Design the change", explored)
    build_and_check(draft, _lanes(BACKEND, layers), goals, [designed])
    document(draft, [designed])
    review(draft)


def _extend(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Like implement, exploring the current behaviour instead of the patterns."""
    explored = explore(draft, "current", "tests")
    designed = design(draft, "Plan the extension", explored)
    build_and_check(draft, _lanes(BACKEND, layers), goals, [designed])
    document(draft, [designed])
    review(draft)


def _fix(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Find the cause, fix it, prove it with a test, review; no design step."""
    explored = explore(draft, "cause", "tests")
    ui_only = Agent.ui in layers and Agent.builder not in layers
    lane = fix_lane(Agent.ui if ui_only else Agent.builder)
    build_and_check(draft, [lane], goals, explored)
    review(draft)


def _refactor(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Plan the target structure, restructure, check for regressions, review."""
    explored = explore(draft, "domain", "tests")
    designed = design(draft, "Plan the target structure", explored)
    build_and_check(draft, [RESTRUCTURE], goals, [designed])
    review(draft)


def _research(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Researchers and an explorer at once, then a summary with a recommendation."""
    chain = [
        ("options", "Survey the options", "Find the candidate options and costs."),
        ("prior-art", "Study prior art", "Study how others solved this, with sources."),
    ]
    studied = _per_goal(draft, Agent.researcher, "Research", chain, goals, [])
    studied += explore(draft, "codebase")
    brief = "Compare the findings and recommend one option, with its trade-offs."
    draft.add(Agent.researcher, "summary", "Summarize and recommend", brief, studied)


def _test(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Explore the code and its tests, write the missing tests, review."""
    explored = explore(draft, "domain", "tests")
    chain = [
        ("unit", "Write unit tests", "Write unit tests for the behaviour in question."),
        (
            "integration",
            "Write integration tests",
            "Write tests that run the parts together, as users reach them.",
        ),
    ]
    _per_goal(draft, Agent.quality, "Write tests", chain, goals, explored)
    review(draft)


def _docs(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Explore what to document, write the reference and the guide, review."""
    explored = explore(draft, "domain", "patterns")
    chain = [
        ("reference", "Write the reference", "Write accurate reference docs."),
        ("guide", "Write the guide", "Write a task-oriented guide with examples."),
    ]
    _per_goal(draft, Agent.docs, "Document", chain, goals, explored)
    review(draft)


def _security(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Map the attack surface, audit, fix the findings, prove the fixes, review."""
    explored = explore(draft, "attack-surface", "dependencies")
    brief = "Audit the code the task concerns; rank the findings by severity."
    chain = [("audit", "Audit for vulnerabilities", brief)]
    audited = _per_goal(draft, Agent.security, "Audit", chain, goals, explored)

    brief = "Fix the audit's findings, most severe first."
    hardened = draft.add(Agent.builder, "hardening", "Fix the findings", brief, audited)
    brief = "Write tests that prove each finding is fixed."
    draft.add(Agent.quality, "security", "Prove the fixes", brief, [hardened])
    review(draft)


def _ui(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Survey the components, build the interface and named layers, test, review."""
    explored = explore(draft, "components", "patterns")
    build_and_check(draft, _lanes(INTERFACE, layers), goals, explored)
    review(draft)


def _integration(draft: Draft, goals: list[Goal], layers: frozenset[Agent]) -> None:
    """Study the service, design, connect it and named layers, test, document."""
    brief = "Study the external service's API, limits, auth and webhook semantics."
    explored = explore(draft, "domain")
    explored.append(
        draft.add(Agent.researcher, "provider", "Study the external service", brief)
    )

    designed = design(draft, "Design the integration", explored)
    build_and_check(draft, _lanes(INTEGRATIONS, layers), goals, [designed])
    document(draft, [designed])
    review(draft)


Template = Callable[[Draft, list[Goal], frozenset[Agent]], None]

TEMPLATES: dict[TaskType, Template] = {
    TaskType.implement: _implement,
    TaskType.extend: _extend,
    TaskType.fix: _fix,
    TaskType.refactor: _refactor,
    TaskType.research: _research,
    TaskType.test: _test,
    TaskType.docs: _docs,
    TaskType.security: _security,
    TaskType.ui: _ui,
    TaskType.integration: _integration,
}

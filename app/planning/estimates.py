"""How long each agent's step is expected to take, before any run is measured."""

from collections.abc import Mapping

from app.planning.models import Agent, StepSpec

DEFAULT_ESTIMATE_MS: dict[Agent, int] = {
    Agent.explore: 400,
    Agent.researcher: 600,
    Agent.architect: 500,
    Agent.builder: 800,
    Agent.ui: 600,
    Agent.integrations: 700,
    Agent.refactor: 700,
    Agent.quality: 400,
    Agent.security: 500,
    Agent.docs: 300,
    Agent.reviewer: 300,
}


def resolve_estimate(step: StepSpec, learned: Mapping[Agent, int] | None = None) -> int:
    """The step's own estimate, else the learned one for its agent, else the default."""
    if step.estimate_ms is not None:
        return step.estimate_ms
    if learned and step.agent in learned:
        return learned[step.agent]
    return DEFAULT_ESTIMATE_MS[step.agent]

"""The words the planner reads in a task, always matched as whole words.

Each vocabulary maps a key (a task type, an agent) to a regular expression of
words and short phrases. Matching is case-insensitive and bounded by ``\\b`` on
both sides, so "performance" never reads as "form" and "latest" never as "test".
When two keys match at the same position, the key listed first wins: that is how
"integration tests" reads as tests rather than as an integration.
"""

import re
from collections.abc import Mapping
from typing import Generic, TypeVar

from app.planning.models import Agent, TaskType

K = TypeVar("K")

POLITE_LEAD = re.compile(
    r"^(?:(?:please|kindly|let'?s|(?:we|i)\s+(?:need|want)\s+to|(?:can|could)\s+you)"
    r"\s+)+",
    re.IGNORECASE,
)


class Vocabulary(Generic[K]):
    """Keys and their word patterns, compiled into one case-insensitive regex."""

    def __init__(self, patterns: Mapping[K, str]) -> None:
        self._keys = list(patterns)
        groups = (f"(?P<k{i}>{p})" for i, p in enumerate(patterns.values()))
        self._regex = re.compile(r"\b(?:" + "|".join(groups) + r")\b", re.IGNORECASE)

    def lead(self, text: str) -> K | None:
        """The key of the words the text starts with, if any."""
        match = self.lead_match(text)
        return self._key(match) if match else None

    def lead_match(self, text: str) -> re.Match[str] | None:
        """The words the text starts with, as a match, if any."""
        return self._regex.match(text)

    def first(self, text: str) -> K | None:
        """The key of the earliest words named in the text, if any."""
        match = self._regex.search(text)
        return self._key(match) if match else None

    def named(self, text: str) -> set[K]:
        """Every key whose words the text names."""
        return {self._key(match) for match in self._regex.finditer(text)}

    def _key(self, match: re.Match[str]) -> K:
        return self._keys[int(match.lastgroup[1:])]


def without_polite_lead(text: str) -> str:
    """The text without a leading "please", "we need to" and the like."""
    return POLITE_LEAD.sub("", text.strip())


# verbs that decide the task type when a task starts with them
DECISIVE_VERBS = Vocabulary(
    {
        TaskType.implement: r"implement|develop|scaffold|bootstrap",
        TaskType.extend: r"extend|enhance|expand|augment",
        TaskType.fix: r"fix|repair|debug|resolve|patch|restore|troubleshoot|hotfix",
        TaskType.refactor: (
            r"refactor|restructure|reorgani[sz]e|simplify|clean\s+up|tidy(?:\s+up)?"
            r"|optimi[sz]e|speed\s+up|modernize|migrate|rename|deduplicate|decouple"
        ),
        TaskType.research: (
            r"research|investigate|explore|compare|evaluate|assess|survey|study"
            r"|analy[sz]e|benchmark"
        ),
        TaskType.test: r"test|unit[\s-]test",
        TaskType.docs: r"document",
        TaskType.security: r"audit|harden|secure|pentest",
        TaskType.ui: r"redesign|restyle|style",
        TaskType.integration: r"integrate|connect|hook\s+up|wire\s+up",
    }
)

# verbs that leave the decision to the words after them, with a fallback type
OPEN_VERBS = Vocabulary(
    {
        TaskType.implement: (
            r"create|build|make|write|set\s+up|introduce|provide|generate"
        ),
        TaskType.extend: r"add|update|support|allow|change|modify|upgrade",
        TaskType.refactor: r"improve",
    }
)

TEST_WORDS = (
    r"(?:unit|integration|end[\s-]to[\s-]end|e2e|regression|performance|load|smoke"
    r"|snapshot)\s+tests?|tests?|testing|test\s+coverage"
)
INTEGRATION_WORDS = (
    r"integrat(?:e|es|ed|ing|ion|ions)|webhooks?"
    r"|third[\s-]party(?:\s+(?:apis?|services?))?|external\s+(?:apis?|services?)"
)
UI_WORDS = (
    r"ui|ux|user\s+interface|front[\s-]?end|pages?|screens?|forms?|layouts?|css"
    r"|buttons?|modals?|widgets?"
)

# topic words, in the order that settles a tie at one position
TOPICS = Vocabulary(
    {
        TaskType.security: (
            r"security|insecure|vulnerabilit(?:y|ies)|vulnerable|xss|csrf|ssrf"
            r"|(?:sql\s+)?injections?|cves?|pen[\s-]?tests?|penetration\s+tests?"
            r"|threat\s+models?|hardening|exploits?"
        ),
        TaskType.test: TEST_WORDS + r"|coverage",
        TaskType.docs: (
            r"docs|documentation|readme|docstrings?|changelog|tutorials?"
            r"|(?:user|developer)\s+guides?|api\s+reference"
        ),
        TaskType.fix: (
            r"fix(?:es|ed)?|bugs?|bugfix(?:es)?|hotfix(?:es)?|crash(?:es|ed|ing)?"
            r"|broken|defects?|failing|regressions?"
        ),
        TaskType.integration: INTEGRATION_WORDS,
        TaskType.ui: UI_WORDS,
        TaskType.refactor: (
            r"refactor(?:s|ed|ing)?|restructur(?:e|ing)|clean[\s-]?up"
            r"|tech(?:nical)?\s+debt|dead\s+code|performance|optimi[sz]ation"
        ),
        TaskType.research: (
            r"research|investigation|comparison|evaluation|alternatives"
            r"|trade[\s-]?offs?|feasibility"
        ),
    }
)

# the layers a task can name, each keyed by the agent that builds it
LAYERS = Vocabulary(
    {
        Agent.quality: TEST_WORDS,
        Agent.integrations: INTEGRATION_WORDS,
        Agent.ui: UI_WORDS,
        Agent.builder: r"back[\s-]?end|server(?:[\s-]side)?|apis?|rest|endpoints?",
    }
)

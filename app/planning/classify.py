"""Task types from task text: the leading verb first, then the topic words."""

from app.planning.models import TaskType
from app.planning.words import DECISIVE_VERBS, OPEN_VERBS, TOPICS, without_polite_lead


def classify(task: str) -> TaskType:
    """The type of a task, read from its words; implement when nothing matches."""
    text = without_polite_lead(task)

    decided = DECISIVE_VERBS.lead(text)
    if decided is not None:
        return decided

    topic = TOPICS.first(text)
    if topic is not None:
        return topic

    return OPEN_VERBS.lead(text) or TaskType.implement

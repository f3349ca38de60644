"""Sub-goals and layers: what a task asks for, read from its words.

A sub-goal is a piece of work that can be built apart from the others ("login",
"register"). A layer is a kind of work the task names ("UI", "backend", "tests");
layers choose which agents appear, they never make sub-goals. The rules, in order:

1. Blocks. Bulleted or numbered lines ("- ", "* ", "1. ", "2) ") are one block
   each and the other lines are context. Without bullets, each sentence that starts
   with an action verb is a block and the other sentences are context; a task with
   no such sentence is one block.
2. A block's leading verb goes: "Implement login" reads as "login".
3. A "with", "using", "via", "including" or "without" phrase qualifies the goal and
   is never split: "login with OAuth and SAML" is one goal, and "with UI, backend,
   and tests" names layers.
4. The rest is a list, split at commas, "and" and "&". "And" before "drop",
   "paste", "replace", "cons" or "forth" joins a fixed pair (drag and drop). An item
   that starts with a verb and a determiner loses the verb ("fix the export").
5. Shared words. When only the first item has a "for" or "of" phrase, the items
   after it share its head: "tests for the parser and the lexer" gives "parser" and
   "lexer". When only the last item ends in such a phrase, it is context shared by
   all: "search and filters on the dashboard" gives "search" and "filters".
6. Items lose articles and a trailing "feature(s)" or "functionality"; empty and
   repeated items (ignoring case) go.
"""

import re
from collections.abc import Iterable

from app.planning.models import Agent
from app.planning.words import DECISIVE_VERBS, LAYERS, OPEN_VERBS, without_polite_lead

BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(?P<text>.*\S)")
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
QUALIFIER = re.compile(
    r"\s*,?\s+(?:with|using|via|including|without)\b.*$", re.IGNORECASE | re.DOTALL
)
LIST_SEPARATOR = re.compile(
    r"\s*,\s*(?:(?:and|&)\s+)?|\s+(?:and|&)\s+(?!(?:drop|paste|replace|cons|forth)\b)",
    re.IGNORECASE,
)
DETERMINER = re.compile(
    r"\s*(?:the|a|an|all|our|its|their|this|that|these|those|some|each|every)\b",
    re.IGNORECASE,
)
HEAD_PHRASE = re.compile(r"^.+?\s(?:for|of)\s+(?P<object>.+)$", re.IGNORECASE)
PHRASE = re.compile(
    r"\s(?:for|of|in|on|to|from|into|across|at|within)\s+.*$", re.IGNORECASE
)
ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
GENERIC_TAIL = re.compile(r"\s+(?:features?|functionality)$", re.IGNORECASE)


def sub_goals(task: str) -> list[str]:
    """The task's independent sub-goals, in the order the task names them."""
    items = (item for block in _blocks(task) for item in _items(block))
    return _unique(items)


def named_layers(task: str) -> frozenset[Agent]:
    """The agents whose layers the task names: ui, builder, integrations, quality."""
    return frozenset(LAYERS.named(task))


def _blocks(task: str) -> list[str]:
    bullets = [m["text"] for m in map(BULLET.match, task.splitlines()) if m]
    if bullets:
        return bullets

    text = " ".join(task.split())
    sentences = SENTENCE_END.split(text)
    actions = [s for s in sentences if _verb(without_polite_lead(s))]
    return actions or [text]


def _items(block: str) -> list[str]:
    text = without_polite_lead(block).rstrip(".!?;: ")
    verb = _verb(text)
    if verb:
        text = text[verb.end() :]

    text = QUALIFIER.sub("", text)
    items = [_without_verb(part) for part in LIST_SEPARATOR.split(text.strip())]
    return [_clean(item) for item in _share_context(items)]


def _verb(text: str) -> re.Match[str] | None:
    return DECISIVE_VERBS.lead_match(text) or OPEN_VERBS.lead_match(text)


def _without_verb(item: str) -> str:
    verb = _verb(item)
    if verb and DETERMINER.match(item, verb.end()):
        return item[verb.end() :]
    return item


def _share_context(items: list[str]) -> list[str]:
    if len(items) < 2:
        return items

    head = HEAD_PHRASE.match(items[0])
    if head and not any(PHRASE.search(item) for item in items[1:]):
        return [head["object"], *items[1:]]

    tail = PHRASE.search(items[-1])
    if tail and not any(PHRASE.search(item) for item in items[:-1]):
        return [*items[:-1], items[-1][: tail.start()]]
    return items


def _clean(item: str) -> str:
    item = item.strip(" \t\"'`.,;:!?()[]")
    return GENERIC_TAIL.sub("", ARTICLE.sub("", item)).strip()


def _unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for item in items:
        if item and item.lower() not in seen:
            seen.add(item.lower())
            kept.append(item)
    return kept

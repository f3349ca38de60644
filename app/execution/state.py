"""Shared state: the per-execution key-value store that steps read and write.

A step reads a snapshot of every key's value when its run starts, and writes
updates in its result. Each key has a version (1 at its first write, then one
more per change), a merge rule declared in the execution's config, and the
writers of its value:

- ``replace`` (the default): a write sets the value. Two writes conflict when
  the second comes from a run whose snapshot is older than the key's current
  version (both runs saw the same value and changed it without seeing each
  other's change). The conflict is resolved the same way whatever order the
  runs finish in: the write of the step that comes later in the plan's step
  order is kept; the other is discarded and the conflict reported.
- ``append``: the value is a list and each write adds one item to it, so
  concurrent writes never conflict; the writer of each item is kept.

This module is pure: it decides, the executor loop stores and reports.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class MergeRule(StrEnum):
    replace = "replace"  # a write sets the value; concurrent writes conflict
    append = "append"  # a write adds one item to the value's list


@dataclass(frozen=True)
class Writer:
    """Who wrote a value: which step, in which run and attempt, and when."""

    step_id: str
    run_id: str
    attempt: int
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class Entry:
    """One key as it stands."""

    key: str
    value: Any
    version: int
    merge: MergeRule
    writer: Writer
    writers: tuple[Writer, ...] = ()  # an append key's item writers, in order


@dataclass(frozen=True)
class Conflict:
    """A replace-key written by a run that had not seen the key's last change."""

    key: str
    kept: Writer
    discarded: Writer
    seen_version: int  # the version in the discarded or overwritten run's snapshot
    version: int  # the key's version after the conflict was resolved


@dataclass(frozen=True)
class Outcome:
    """What one run's updates do: the entries to store and the conflicts."""

    entries: list[Entry] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


class SharedState:
    """An execution's shared state in memory, merging writes by each key's rule."""

    def __init__(self, rules: dict[str, MergeRule], step_order: dict[str, int]) -> None:
        self.rules = rules
        self.step_order = step_order
        self.entries: dict[str, Entry] = {}

    def values(self) -> dict[str, Any]:
        """What a run sees: each key's value."""
        return {key: entry.value for key, entry in self.entries.items()}

    def versions(self) -> dict[str, int]:
        """The version of each key, kept with a run's snapshot."""
        return {key: entry.version for key, entry in self.entries.items()}

    def merge(
        self, updates: dict[str, Any], writer: Writer, seen: dict[str, int]
    ) -> Outcome:
        """What one run's updates come to; nothing changes until ``keep``."""
        outcome = Outcome()
        for key, value in updates.items():
            current = self.entries.get(key)
            rule = self.rules.get(key, MergeRule.replace)
            if current is None:
                items = (writer,) if rule == MergeRule.append else ()
                first = [value] if rule == MergeRule.append else value
                outcome.entries.append(Entry(key, first, 1, rule, writer, items))
            elif rule == MergeRule.append:
                outcome.entries.append(_appended(current, value, writer))
            elif current.version == seen.get(key, 0):
                outcome.entries.append(_replaced(current, value, writer))
            else:
                self._resolve(current, value, writer, seen.get(key, 0), outcome)
        return outcome

    def keep(self, outcome: Outcome) -> None:
        """Make an outcome's entries current, once they are stored."""
        for entry in outcome.entries:
            self.entries[entry.key] = entry

    def _resolve(
        self,
        current: Entry,
        value: Any,
        writer: Writer,
        seen_version: int,
        outcome: Outcome,
    ) -> None:
        if self._later(writer.step_id, current.writer.step_id):
            entry = _replaced(current, value, writer)
            outcome.entries.append(entry)
            kept, discarded = writer, current.writer
        else:
            entry, kept, discarded = current, current.writer, writer
        outcome.conflicts.append(
            Conflict(current.key, kept, discarded, seen_version, entry.version)
        )

    def _later(self, step_id: str, other: str) -> bool:
        """Whether step_id comes after other in the plan's order (ties: by id)."""
        mine = (self.step_order.get(step_id, -1), step_id)
        theirs = (self.step_order.get(other, -1), other)
        return mine >= theirs


def _replaced(current: Entry, value: Any, writer: Writer) -> Entry:
    return replace(current, value=value, version=current.version + 1, writer=writer)


def _appended(current: Entry, value: Any, writer: Writer) -> Entry:
    items = current.value if isinstance(current.value, list) else [current.value]
    return replace(
        current,
        value=[*items, value],
        version=current.version + 1,
        writer=writer,
        writers=(*current.writers, writer),
    )

import itertools
from datetime import UTC, datetime, timedelta

from app.execution.state import MergeRule, SharedState, Writer

ORDER = {"explore": 0, "api": 1, "ui": 2, "review": 3}
START = datetime(2026, 12, 5, tzinfo=UTC)


def writer(step_id: str, attempt: int = 1, second: int = 0) -> Writer:
    return Writer(
        step_id, f"run-{step_id}-{attempt}", attempt, START + timedelta(seconds=second)
    )


def write(state: SharedState, step_id: str, updates: dict, seen: dict | None = None):
    outcome = state.merge(updates, writer(step_id), seen or {})
    state.keep(outcome)
    return outcome


class TestReplaceKeys:
    def test_a_first_write_is_version_one_with_its_writer(self) -> None:
        state = SharedState({}, ORDER)

        write(state, "explore", {"schema": "users"})

        entry = state.entries["schema"]
        assert (entry.value, entry.version, entry.merge) == ("users", 1, "replace")
        assert entry.writer == writer("explore")
        assert state.values() == {"schema": "users"}

    def test_a_write_that_saw_the_last_version_replaces_it(self) -> None:
        state = SharedState({}, ORDER)
        write(state, "explore", {"schema": "users"})

        outcome = write(state, "review", {"schema": "accounts"}, state.versions())

        assert outcome.conflicts == []
        assert state.entries["schema"].value == "accounts"
        assert state.entries["schema"].version == 2

    def test_the_later_step_in_plan_order_wins_whichever_finishes_first(
        self,
    ) -> None:
        finals = set()
        for order in itertools.permutations(["api", "ui", "explore"]):
            state = SharedState({}, ORDER)
            seen = state.versions()  # all three ran at once from the same snapshot
            conflicts = []
            for step_id in order:
                conflicts += write(state, step_id, {"port": step_id}, seen).conflicts
            finals.add(state.entries["port"].value)
            assert len(conflicts) == 2
            assert all(c.kept.step_id in ("api", "ui") for c in conflicts)
        assert finals == {"ui"}

    def test_a_losing_write_leaves_value_and_version_alone(self) -> None:
        state = SharedState({}, ORDER)
        write(state, "ui", {"port": 8080})

        outcome = write(state, "api", {"port": 9090}, seen={})

        assert outcome.entries == []
        [conflict] = outcome.conflicts
        assert conflict.kept.step_id == "ui"
        assert conflict.discarded.step_id == "api"
        assert (conflict.seen_version, conflict.version) == (0, 1)
        assert state.entries["port"].value == 8080


class TestAppendKeys:
    def test_concurrent_writes_are_all_kept_in_order_with_their_writers(
        self,
    ) -> None:
        state = SharedState({"findings": MergeRule.append}, ORDER)
        seen = state.versions()

        for step_id in ("ui", "api", "explore"):
            assert write(state, step_id, {"findings": step_id}, seen).conflicts == []

        entry = state.entries["findings"]
        assert entry.value == ["ui", "api", "explore"]
        assert entry.version == 3
        assert [w.step_id for w in entry.writers] == ["ui", "api", "explore"]
        assert entry.writer.step_id == "explore"

    def test_a_list_is_appended_as_one_item(self) -> None:
        state = SharedState({"files": MergeRule.append}, ORDER)

        write(state, "api", {"files": ["a.py", "b.py"]})

        assert state.entries["files"].value == [["a.py", "b.py"]]


class TestMergeIsPure:
    def test_nothing_changes_until_the_outcome_is_kept(self) -> None:
        state = SharedState({}, ORDER)

        outcome = state.merge({"schema": "users"}, writer("api"), {})

        assert state.entries == {}
        state.keep(outcome)
        assert state.values() == {"schema": "users"}

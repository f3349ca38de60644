from app.execution.ready import Node, PhaseTracker, ReadySet


def nodes(*specs: tuple[str, list[str], int]) -> list[Node]:
    return [Node(step_id, deps, priority) for step_id, deps, priority in specs]


class TestReadiness:
    def test_steps_without_dependencies_are_ready_at_once(self) -> None:
        ready = ReadySet(nodes(("a", [], 1), ("b", [], 1), ("c", ["a"], 1)))
        assert {ready.pop(), ready.pop()} == {"a", "b"}
        assert not ready.has_ready()

    def test_a_step_becomes_ready_when_its_last_dependency_succeeds(self) -> None:
        ready = ReadySet(nodes(("a", [], 1), ("b", [], 1), ("c", ["a", "b"], 1)))
        ready.pop(), ready.pop()
        assert ready.succeeded("a") == []
        assert ready.succeeded("b") == ["c"]
        assert ready.pop() == "c"

    def test_a_repeated_dependency_counts_once(self) -> None:
        ready = ReadySet(nodes(("a", [], 1), ("b", ["a", "a"], 1)))
        ready.pop()
        assert ready.succeeded("a") == ["b"]


class TestPriority:
    def test_the_longest_remaining_path_comes_out_first(self) -> None:
        ready = ReadySet(
            nodes(("short", [], 100), ("long", [], 1100), ("mid", [], 500))
        )
        assert [ready.pop(), ready.pop(), ready.pop()] == ["long", "mid", "short"]

    def test_equal_priorities_keep_plan_order(self) -> None:
        ready = ReadySet(nodes(("b", [], 5), ("a", [], 5), ("c", [], 5)))
        assert [ready.pop(), ready.pop(), ready.pop()] == ["b", "a", "c"]


class TestFailure:
    def test_everything_downstream_of_a_failure_is_skipped_in_plan_order(self) -> None:
        ready = ReadySet(
            nodes(
                ("a", [], 1),
                ("b", ["a"], 1),
                ("other", [], 1),
                ("c", ["b", "other"], 1),
                ("d", ["c"], 1),
            )
        )
        ready.pop(), ready.pop()
        assert ready.did_not_succeed("a") == ["b", "c", "d"]
        assert ready.succeeded("other") == []
        assert not ready.has_ready()

    def test_drain_returns_only_steps_that_never_started(self) -> None:
        ready = ReadySet(nodes(("a", [], 2), ("b", [], 1), ("c", ["a"], 1)))
        assert ready.pop() == "a"
        assert ready.drain() == ["b", "c"]
        assert not ready.has_ready()


class TestPhases:
    def test_a_phase_starts_once_and_ends_with_its_last_step(self) -> None:
        tracker = PhaseTracker({"a": 0, "b": 0, "c": 1})
        assert tracker.start("a") == 0
        assert tracker.start("b") is None
        assert tracker.finish("a") is None
        assert tracker.finish("b") == 0
        assert tracker.finish("c") == 1
        assert tracker.started == {0}

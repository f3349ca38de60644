import pytest

from app.errors import InvalidRequest, PlanInvalid, PlanTooLarge
from app.planning import Agent, StepSpec, make_plan
from app.planning.graph import (
    StepGraph,
    check,
    critical_path,
    parallel_ms,
    phases,
    remaining_path_ms,
)


def step(step_id, *deps, ms=100):
    return StepSpec(
        id=step_id, agent=Agent.builder, depends_on=list(deps), estimate_ms=ms
    )


def crossing_chains():
    return [
        step("a1", ms=1000),
        step("a2", "a1", ms=100),
        step("b1", ms=100),
        step("b2", "b1", ms=1000),
    ]


def diamond():
    return [
        step("start", ms=100),
        step("left", "start", ms=300),
        step("right", "start", ms=200),
        step("end", "left", "right", ms=100),
    ]


class TestSize:
    def test_an_empty_plan_is_invalid(self):
        with pytest.raises(PlanInvalid, match="plan has no steps") as caught:
            check([])
        assert caught.value.status_code == 422

    def test_a_plan_over_the_limit_names_its_count_and_the_limit(self):
        steps = [step(f"s{i}") for i in range(4)]
        with pytest.raises(PlanTooLarge, match="4 steps.*limit of 3") as caught:
            check(steps, max_steps=3)
        assert caught.value.details == {"steps": 4, "max_steps": 3}
        assert caught.value.status_code == 413

    def test_a_plan_at_the_limit_is_accepted(self):
        check([step(f"s{i}") for i in range(3)], max_steps=3)


class TestDuplicateIds:
    def test_duplicate_ids_are_named_once_each(self):
        steps = [step("a"), step("b"), step("a"), step("b"), step("a"), step("c")]
        with pytest.raises(PlanInvalid, match="duplicate step ids: a, b") as caught:
            check(steps)
        assert caught.value.details == {"duplicate_ids": ["a", "b"]}


class TestUnknownDependencies:
    def test_each_step_names_its_missing_dependencies(self):
        steps = [step("a", "ghost"), step("b", "a", "phantom", "ghost"), step("c")]
        with pytest.raises(PlanInvalid, match="b -> phantom, ghost") as caught:
            check(steps)
        assert caught.value.details == {
            "unknown_dependencies": {"a": ["ghost"], "b": ["phantom", "ghost"]}
        }


class TestCycles:
    def test_a_step_depending_on_itself_is_a_cycle_of_one(self):
        with pytest.raises(PlanInvalid, match="cycle: a -> a") as caught:
            check([step("a", "a")])
        assert caught.value.details == {"cycle": ["a", "a"]}

    def test_the_cycle_path_is_given_in_dependency_order(self):
        steps = [step("a", "b"), step("b", "c"), step("c", "a")]
        with pytest.raises(PlanInvalid) as caught:
            check(steps)
        assert caught.value.details == {"cycle": ["a", "b", "c", "a"]}

    def test_only_the_steps_on_the_cycle_are_named(self):
        steps = [step("root"), step("x", "root", "y"), step("y", "z"), step("z", "x")]
        with pytest.raises(PlanInvalid) as caught:
            check(steps)
        assert caught.value.details == {"cycle": ["x", "y", "z", "x"]}

    def test_the_same_plan_always_reports_the_same_cycle(self):
        steps = [step("a", "b"), step("b", "a"), step("c", "d"), step("d", "c")]
        reports = set()
        for _ in range(3):
            with pytest.raises(PlanInvalid) as caught:
                check(steps)
            reports.add(tuple(caught.value.details["cycle"]))
        assert reports == {("a", "b", "a")}


class TestRepeatedDependencies:
    def test_a_dependency_listed_twice_counts_once(self):
        graph = StepGraph.build([step("a"), step("b", "a", "a")])
        assert graph.deps == [[], [0]]
        assert graph.dependents == [[1], []]


class TestOrder:
    def test_a_topological_plan_keeps_its_order(self):
        graph = StepGraph.build(diamond())
        assert graph.ids == ["start", "left", "right", "end"]

    def test_dependencies_move_before_the_steps_that_need_them(self):
        steps = [step("end", "left", "right"), step("right", "start"), step("left")]
        steps.append(step("start"))
        graph = StepGraph.build(steps)
        assert graph.ids == ["left", "start", "right", "end"]


class TestPhases:
    def test_a_phase_is_the_depth_in_the_graph(self):
        assert phases(diamond()) == [["start"], ["left", "right"], ["end"]]

    def test_depth_follows_the_deepest_dependency(self):
        steps = [step("a"), step("b", "a"), step("c", "b"), step("d", "a", "c")]
        assert phases(steps) == [["a"], ["b"], ["c"], ["d"]]

    def test_steps_without_dependencies_share_the_first_phase(self):
        assert phases(crossing_chains()) == [["a1", "b1"], ["a2", "b2"]]


class TestRemainingPath:
    def test_it_is_the_estimate_plus_the_longest_path_after(self):
        assert remaining_path_ms(diamond()) == {
            "start": 500,
            "left": 400,
            "right": 300,
            "end": 100,
        }

    def test_a_leaf_keeps_its_own_estimate(self):
        assert remaining_path_ms([step("only", ms=7)]) == {"only": 7}


class TestCriticalPath:
    def test_it_is_the_longest_chain_of_estimates(self):
        assert critical_path(diamond()) == (["start", "left", "end"], 500)

    def test_a_tie_goes_to_the_earlier_step(self):
        assert critical_path(crossing_chains()) == (["a1", "a2"], 1100)


class TestParallelEstimate:
    def test_one_slot_takes_the_sum_of_the_estimates(self):
        assert parallel_ms(diamond(), 1) == 700
        assert parallel_ms(crossing_chains(), 1) == 2200

    def test_two_slots_overlap_the_branches(self):
        assert parallel_ms(diamond(), 2) == 500

    def test_crossing_chains_finish_with_their_critical_path(self):
        for slots in (2, 3, 8):
            assert parallel_ms(crossing_chains(), slots) == 1100

    def test_a_free_slot_goes_to_the_longest_remaining_path(self):
        # in plan order a and b would go first and d would end at 1100
        steps = [step("a"), step("b"), step("c"), step("d", "c", ms=900)]
        assert parallel_ms(steps, 2) == 1000

    def test_fewer_slots_than_ready_steps_queue_the_rest(self):
        steps = [step(f"s{i}", ms=100) for i in range(5)]
        assert parallel_ms(steps, 2) == 300

    def test_zero_slots_are_refused(self):
        with pytest.raises(InvalidRequest) as caught:
            parallel_ms(diamond(), 0)
        assert caught.value.details == {"max_parallel": 0}


class TestPlannedSteps:
    def test_the_figures_work_on_a_plans_own_steps(self):
        plan = make_plan("x", steps=diamond())
        assert remaining_path_ms(plan.steps) == remaining_path_ms(diamond())
        assert critical_path(plan.steps) == (plan.critical_path, plan.critical_path_ms)


class TestLearnedEstimates:
    def test_learned_estimates_fill_in_steps_without_one(self):
        steps = [StepSpec(id="a", agent=Agent.docs), step("b", "a", ms=5)]
        graph = StepGraph.build(steps, learned={Agent.docs: 50})
        assert graph.estimates == [50, 5]


class TestLargePlans:
    def test_a_plan_of_5000_steps_and_about_10000_edges_is_figured(self):
        # two edges per step: one chain through all, one jump back to the middle
        steps = [step("s0", ms=10), step("s1", "s0", ms=10)]
        for i in range(2, 5000):
            steps.append(step(f"s{i}", f"s{i - 1}", f"s{i // 2 - 1}", ms=10))
        assert sum(len(s.depends_on) for s in steps) == 9997

        graph = StepGraph.build(steps, max_steps=5000)
        assert len(graph.phases()) == 5000
        assert graph.critical_path()[1] == 50_000
        assert graph.parallel_ms(4) == 50_000

    def test_a_wide_plan_is_estimated_with_its_slots(self):
        roots = [step(f"r{i}", ms=10) for i in range(2500)]
        joins = [
            step(f"j{i}", f"r{i}", f"r{(i + 1) % 2500}", f"r{(i + 2) % 2500}", ms=10)
            for i in range(2500)
        ]
        graph = StepGraph.build(roots + joins)
        assert graph.phases()[1][0] == "j0"
        assert graph.parallel_ms(100) == 500
        assert graph.sequential_ms() == 50_000

import pytest

from app.errors import InvalidRequest, PlanInvalid, PlanTooLarge
from app.planning import Agent, Mode, StepSpec, TaskType, describe, make_plan

LOGIN = "Implement login feature with UI, backend, and tests"


def step(step_id, *deps, ms=100, agent=Agent.builder):
    return StepSpec(id=step_id, agent=agent, depends_on=list(deps), estimate_ms=ms)


class TestChainPlans:
    def test_the_login_task_is_a_chain_of_the_implement_template(self):
        plan = make_plan(LOGIN)
        assert plan.mode is Mode.chain
        assert plan.task_type is TaskType.implement
        assert plan.phases == [
            ["explore-domain", "explore-tests", "explore-patterns"],
            ["architect-design"],
            ["builder-backend", "ui-frontend", "docs-update"],
            ["quality-backend", "quality-ui"],
            ["reviewer-final"],
        ]

    def test_each_step_carries_its_phase_and_resolved_estimate(self):
        plan = make_plan(LOGIN)
        by_id = {step.id: step for step in plan.steps}
        assert by_id["architect-design"].phase == 1
        assert by_id["reviewer-final"].phase == 4
        assert by_id["builder-backend"].estimate_ms == 800

    def test_steps_come_in_topological_order(self):
        plan = make_plan(LOGIN)
        seen = set()
        for step_ in plan.steps:
            assert set(step_.depends_on) <= seen
            seen.add(step_.id)

    def test_the_same_task_always_gives_the_same_plan(self):
        assert make_plan(LOGIN) == make_plan(LOGIN)


class TestAutoMode:
    def test_two_sub_goals_decompose_into_parallel_builders(self):
        plan = make_plan("Implement login and register features")
        assert plan.mode is Mode.decompose

        by_id = {step.id: step for step in plan.steps}
        login, register = by_id["builder-login"], by_id["builder-register"]
        assert login.phase == register.phase
        assert "builder-register" not in login.depends_on
        assert "builder-login" not in register.depends_on

    def test_named_layers_give_each_sub_goal_its_lanes(self):
        plan = make_plan("Implement login and register features with UI and tests")
        ids = {step.id for step in plan.steps}
        assert {"builder-login", "ui-login", "builder-register", "ui-register"} <= ids
        assert {"quality-login-ui", "quality-register-ui"} <= ids

    def test_one_sub_goal_stays_a_chain(self):
        assert make_plan("Fix bug in node X").mode is Mode.chain


class TestForcedModes:
    def test_decompose_branches_even_a_single_goal(self):
        plan = make_plan("Implement login", mode=Mode.decompose)
        assert plan.mode is Mode.decompose
        assert "builder-login" in {step.id for step in plan.steps}

    def test_chain_ignores_the_sub_goals(self):
        plan = make_plan("Implement login and register features", mode=Mode.chain)
        builders = [s.id for s in plan.steps if s.agent is Agent.builder]
        assert builders == ["builder-backend"]

    def test_decompose_without_goals_falls_back_to_the_template(self):
        plan = make_plan("Refactor", mode=Mode.decompose)
        assert "refactor-code" in {step.id for step in plan.steps}


class TestExplicitPlans:
    def test_given_steps_skip_the_planner(self):
        steps = [step("write", agent=Agent.docs), step("check", "write")]
        plan = make_plan("Fix the crash", steps=steps)
        assert plan.mode is Mode.explicit
        assert plan.task_type is TaskType.fix
        assert [s.id for s in plan.steps] == ["write", "check"]

    def test_given_steps_are_put_in_topological_order(self):
        steps = [step("last", "first"), step("first")]
        plan = make_plan("x", steps=steps)
        assert [s.id for s in plan.steps] == ["first", "last"]

    def test_repeated_dependencies_are_merged(self):
        plan = make_plan("x", steps=[step("a"), step("b", "a", "a")])
        assert plan.steps[1].depends_on == ["a"]

    def test_invalid_steps_are_refused_with_their_names(self):
        with pytest.raises(PlanInvalid) as caught:
            make_plan("x", steps=[step("a", "b"), step("b", "a")])
        assert caught.value.details == {"cycle": ["a", "b", "a"]}

    def test_an_explicit_mode_needs_steps(self):
        with pytest.raises(InvalidRequest):
            make_plan("x", mode=Mode.explicit)

    def test_an_empty_step_list_is_refused(self):
        with pytest.raises(PlanInvalid, match="no steps"):
            make_plan("x", steps=[])


class TestLimits:
    def test_a_template_larger_than_max_steps_is_refused(self):
        with pytest.raises(PlanTooLarge) as caught:
            make_plan(LOGIN, max_steps=5)
        assert caught.value.details == {"steps": 10, "max_steps": 5}

    def test_max_parallel_below_one_is_refused(self):
        with pytest.raises(InvalidRequest):
            make_plan(LOGIN, max_parallel=0)


class TestFigures:
    def crossing(self):
        return [
            step("a1", ms=1000),
            step("a2", "a1", ms=100),
            step("b1", ms=100),
            step("b2", "b1", ms=1000),
        ]

    def test_crossing_chains_take_their_critical_path(self):
        plan = make_plan("x", steps=self.crossing(), max_parallel=2)
        assert plan.parallel_ms == 1100
        assert plan.critical_path_ms == 1100
        assert plan.critical_path == ["a1", "a2"]
        assert plan.sequential_ms == 2200
        assert plan.estimated_savings_ms == 1100

    def test_one_slot_saves_nothing(self):
        plan = make_plan("x", steps=self.crossing(), max_parallel=1)
        assert plan.parallel_ms == plan.sequential_ms == 2200
        assert plan.estimated_savings_ms == 0

    def test_parallel_off_equals_sequential(self):
        plan = make_plan(LOGIN, parallel=False)
        assert plan.parallel_ms == plan.sequential_ms
        assert plan.estimated_savings_ms == 0

    def test_more_slots_never_take_longer(self):
        times = [make_plan(LOGIN, max_parallel=n).parallel_ms for n in (1, 2, 4)]
        assert times == sorted(times, reverse=True)
        assert times[0] == make_plan(LOGIN).sequential_ms
        assert times[-1] == make_plan(LOGIN).critical_path_ms

    def test_learned_estimates_replace_the_defaults(self):
        plan = make_plan(LOGIN, learned_estimates={Agent.builder: 2000})
        by_id = {step.id: step for step in plan.steps}
        assert by_id["builder-backend"].estimate_ms == 2000


class TestDescribe:
    def test_it_lists_phases_then_the_figures(self):
        assert describe(make_plan(LOGIN)) == "\n".join(
            [
                "Plan (implement task, mode chain): 10 steps in 5 phases",
                "Phase 1 (3 steps in parallel):",
                "  explore-domain    [explore]       ~400 ms",
                "  explore-tests     [explore]       ~400 ms",
                "  explore-patterns  [explore]       ~400 ms",
                "Phase 2 (1 step):",
                "  architect-design  [architect]     ~500 ms  after explore-domain, "
                "explore-tests, explore-patterns",
                "Phase 3 (3 steps in parallel):",
                "  builder-backend   [builder]       ~800 ms  after architect-design",
                "  ui-frontend       [ui]            ~600 ms  after architect-design",
                "  docs-update       [docs]          ~300 ms  after architect-design",
                "Phase 4 (2 steps in parallel):",
                "  quality-backend   [quality]       ~400 ms  after builder-backend",
                "  quality-ui        [quality]       ~400 ms  after ui-frontend",
                "Phase 5 (1 step):",
                "  reviewer-final    [reviewer]      ~300 ms  after quality-backend, "
                "quality-ui, docs-update",
                "Critical path (2,400 ms): explore-domain -> architect-design -> "
                "builder-backend -> quality-backend -> reviewer-final",
                "Estimated: sequential 4,500 ms, parallel 2,400 ms, savings 2,100 ms",
            ]
        )

    def test_a_phase_says_how_many_of_its_steps_run_at_once(self):
        headings = {
            limit: [line for line in describe(plan).splitlines() if "Phase 1" in line]
            for limit, plan in (
                ("one", make_plan(LOGIN, parallel=False)),
                ("two", make_plan(LOGIN, max_parallel=2)),
                ("four", make_plan(LOGIN, max_parallel=4)),
            )
        }
        assert headings == {
            "one": ["Phase 1 (3 steps, one at a time):"],
            "two": ["Phase 1 (3 steps, up to 2 in parallel):"],
            "four": ["Phase 1 (3 steps in parallel):"],
        }

    def test_a_one_step_plan_reads_in_the_singular(self):
        text = describe(make_plan("x", steps=[step("only")]))
        assert text.splitlines()[0] == (
            "Plan (implement task, mode explicit): 1 step in 1 phase"
        )

import re

import pytest

from app.planning import STEP_ID_PATTERN, Agent, TaskType
from app.planning.graph import StepGraph
from app.planning.templates import draft_steps, slug, to_goals

LOGIN = "Implement login feature with UI, backend, and tests"
LAYERS = frozenset({Agent.ui, Agent.builder, Agent.quality})


def deps_of(steps):
    return {step.id: step.depends_on for step in steps}


class TestImplementTemplate:
    def test_it_has_this_exact_shape(self):
        steps = draft_steps(LOGIN, TaskType.implement, layers=LAYERS)
        explored = ["explore-domain", "explore-tests", "explore-patterns"]
        assert deps_of(steps) == {
            "explore-domain": [],
            "explore-tests": [],
            "explore-patterns": [],
            "architect-design": explored,
            "builder-backend": ["architect-design"],
            "ui-frontend": ["architect-design"],
            "quality-backend": ["builder-backend"],
            "quality-ui": ["ui-frontend"],
            "docs-update": ["architect-design"],
            "reviewer-final": ["quality-backend", "quality-ui", "docs-update"],
        }

    def test_builder_and_ui_share_a_phase(self):
        steps = draft_steps(LOGIN, TaskType.implement, layers=LAYERS)
        phases = StepGraph.build(steps).phases()
        assert phases[0] == ["explore-domain", "explore-tests", "explore-patterns"]
        assert phases[1] == ["architect-design"]
        assert {"builder-backend", "ui-frontend"} <= set(phases[2])
        assert phases[-1] == ["reviewer-final"]

    def test_without_named_layers_only_the_builder_builds(self):
        steps = draft_steps("Implement login", TaskType.implement)
        work = [s.id for s in steps if s.agent in {Agent.builder, Agent.ui}]
        assert work == ["builder-backend"]

    def test_named_integrations_add_their_lane(self):
        layers = frozenset({Agent.integrations})
        steps = deps_of(
            draft_steps("Implement payouts", TaskType.implement, [], layers)
        )
        assert steps["integrations-api"] == ["architect-design"]
        assert steps["quality-integrations"] == ["integrations-api"]

    def test_every_step_has_a_title_and_instructions_quoting_the_task(self):
        for step in draft_steps(LOGIN, TaskType.implement, layers=LAYERS):
            assert step.title
            assert LOGIN in step.instructions


class TestOtherTemplates:
    def test_a_fix_needs_no_architect(self):
        steps = deps_of(draft_steps("Fix bug in node X", TaskType.fix))
        assert steps == {
            "explore-cause": [],
            "explore-tests": [],
            "builder-fix": ["explore-cause", "explore-tests"],
            "quality-fix": ["builder-fix"],
            "reviewer-final": ["quality-fix"],
        }

    def test_a_fix_named_only_in_the_ui_goes_to_the_ui_agent(self):
        layers = frozenset({Agent.ui})
        steps = draft_steps("Fix the login form", TaskType.fix, [], layers)
        assert "ui-fix" in {step.id for step in steps}

    def test_a_docs_task_needs_no_builder(self):
        steps = draft_steps("Write docs for the API", TaskType.docs)
        agents = {step.agent for step in steps}
        assert agents == {Agent.explore, Agent.docs, Agent.reviewer}

    def test_research_ends_in_a_summary_of_everything_studied(self):
        steps = draft_steps("Research caching options", TaskType.research)
        summary = steps[-1]
        assert summary.id == "researcher-summary"
        assert set(summary.depends_on) == {s.id for s in steps[:-1]}

    def test_a_test_task_writes_tests_after_exploring(self):
        steps = deps_of(draft_steps("Add tests for the parser", TaskType.test))
        assert steps["quality-unit"] == ["explore-domain", "explore-tests"]
        assert steps["reviewer-final"] == ["quality-unit", "quality-integration"]

    def test_security_audits_then_hardens(self):
        steps = deps_of(draft_steps("Audit auth", TaskType.security))
        assert steps["builder-hardening"] == ["security-audit"]
        assert steps["quality-security"] == ["builder-hardening"]

    def test_refactor_uses_the_refactor_agent(self):
        steps = draft_steps("Refactor the storage layer", TaskType.refactor)
        assert "refactor-code" in {step.id for step in steps}

    def test_a_ui_task_builds_the_backend_only_when_named(self):
        plain = draft_steps("Redesign the settings page", TaskType.ui)
        assert "builder-backend" not in {step.id for step in plain}

        layers = frozenset({Agent.ui, Agent.builder})
        both = draft_steps("Redesign the page and API", TaskType.ui, [], layers)
        assert {"ui-frontend", "builder-backend"} <= {step.id for step in both}

    def test_an_integration_studies_the_provider_before_the_design(self):
        steps = deps_of(draft_steps("Integrate Stripe webhooks", TaskType.integration))
        assert steps["architect-design"] == ["explore-domain", "researcher-provider"]
        assert steps["integrations-api"] == ["architect-design"]

    @pytest.mark.parametrize("task_type", list(TaskType))
    def test_every_template_is_a_valid_plan_with_valid_ids(self, task_type):
        for goals in ([], ["login", "register"]):
            steps = draft_steps("Do the thing", task_type, goals, LAYERS)
            StepGraph.build(steps)
            assert all(re.match(STEP_ID_PATTERN, step.id) for step in steps)


class TestBranches:
    def test_each_sub_goal_gets_a_builder_and_a_quality_step(self):
        goals = ["login", "register"]
        steps = deps_of(draft_steps("Implement it", TaskType.implement, goals))
        assert steps["builder-login"] == ["architect-design"]
        assert steps["builder-register"] == ["architect-design"]
        assert steps["quality-login"] == ["builder-login"]
        assert steps["quality-register"] == ["builder-register"]
        assert steps["docs-update"] == ["architect-design"]

    def test_named_layers_give_each_sub_goal_its_own_lanes(self):
        goals = ["login", "register"]
        steps = deps_of(draft_steps("Implement it", TaskType.implement, goals, LAYERS))
        assert steps["ui-login"] == ["architect-design"]
        assert steps["quality-login-ui"] == ["ui-login"]
        assert steps["quality-register-ui"] == ["ui-register"]

    def test_other_templates_branch_their_own_agent(self):
        goals = ["caching", "queues"]
        steps = draft_steps("Research it", TaskType.research, goals)
        assert [s.id for s in steps if s.agent is Agent.researcher] == [
            "researcher-caching",
            "researcher-queues",
            "researcher-summary",
        ]

    def test_a_goal_that_clashes_with_a_fixed_step_gets_a_suffix(self):
        steps = draft_steps("Research it", TaskType.research, ["summary"])
        ids = [step.id for step in steps]
        assert ids.count("researcher-summary") == 1
        assert "researcher-summary-2" in ids


class TestSlugs:
    def test_a_slug_is_lowercase_words_and_hyphens(self):
        assert slug("Password Reset (v2)!") == "password-reset-v2"

    def test_a_slug_is_cut_at_a_word_to_32_characters(self):
        cut = slug("a very long sub goal name that keeps going and going")
        assert cut == "a-very-long-sub-goal-name-that"
        assert len(cut) <= 32

    def test_a_goal_without_letters_or_digits_gets_a_numbered_slug(self):
        assert [g.slug for g in to_goals(["login", "---"])] == ["login", "goal-2"]

from app.planning import DEFAULT_ESTIMATE_MS, Agent, StepSpec, resolve_estimate


class TestDefaults:
    def test_every_agent_has_a_positive_default(self):
        assert set(DEFAULT_ESTIMATE_MS) == set(Agent)
        assert all(ms > 0 for ms in DEFAULT_ESTIMATE_MS.values())

    def test_building_takes_longer_than_exploring_or_reviewing(self):
        builder = DEFAULT_ESTIMATE_MS[Agent.builder]
        assert builder > DEFAULT_ESTIMATE_MS[Agent.explore]
        assert builder > DEFAULT_ESTIMATE_MS[Agent.reviewer]


class TestResolveEstimate:
    def test_the_steps_own_estimate_wins(self):
        step = StepSpec(id="a", agent=Agent.builder, estimate_ms=42)
        assert resolve_estimate(step, {Agent.builder: 9}) == 42

    def test_a_learned_estimate_beats_the_default(self):
        step = StepSpec(id="a", agent=Agent.builder)
        assert resolve_estimate(step, {Agent.builder: 9}) == 9

    def test_the_default_applies_when_nothing_else_is_known(self):
        step = StepSpec(id="a", agent=Agent.docs)
        assert resolve_estimate(step) == DEFAULT_ESTIMATE_MS[Agent.docs]

    def test_a_zero_estimate_is_kept(self):
        step = StepSpec(id="a", agent=Agent.docs, estimate_ms=0)
        assert resolve_estimate(step) == 0

import asyncio

import pytest

from app.runners.simulated import SimulatedRunner


class TestSimulatedResult:
    async def test_the_output_says_plainly_that_no_agent_ran(
        self, make_context, progress
    ):
        result = await SimulatedRunner(time_scale=0).run(make_context(), progress)

        assert result.output["simulated"] is True
        assert result.output["agent"] == "builder"
        assert result.output["step_id"] == "build-api"
        assert result.output["summary"].startswith(
            "Simulated builder step: no agent ran; "
        )

    async def test_it_makes_no_state_updates(self, make_context, progress):
        context = make_context(state={"schema": "v1"})

        result = await SimulatedRunner(time_scale=0).run(context, progress)

        assert result.state_updates == {}

    def test_its_kind_is_simulated(self):
        assert SimulatedRunner().kind == "simulated"


class TestSimulatedDuration:
    async def test_it_waits_at_least_the_scaled_estimate(self, make_context, progress):
        runner = SimulatedRunner(time_scale=0.5)
        loop = asyncio.get_running_loop()

        started = loop.time()
        await runner.run(make_context(estimate_ms=400), progress)

        assert loop.time() - started >= 0.2

    async def test_a_zero_scale_skips_even_an_hour_long_estimate(
        self, make_context, progress
    ):
        runner = SimulatedRunner(time_scale=0)

        async with asyncio.timeout(30):
            result = await runner.run(make_context(estimate_ms=3_600_000), progress)

        assert result.output["simulated"] is True

    def test_a_negative_scale_is_refused(self):
        with pytest.raises(ValueError, match="time_scale"):
            SimulatedRunner(time_scale=-1)


class TestSimulatedProgress:
    async def test_it_logs_one_line_naming_the_agent_and_the_wait(
        self, make_context, progress
    ):
        await SimulatedRunner(time_scale=1).run(make_context(estimate_ms=10), progress)

        assert progress.lines == [
            "Simulating the builder step for 10 ms; no agent runs."
        ]

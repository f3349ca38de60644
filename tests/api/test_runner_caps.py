"""A profile's cap on runs at once, across executions, under the other caps.

Every step waits for a gate file, which the test opens once the runs it expects
have started: the runs then overlap whatever the machine's speed, and a broken
cap shows as more runs at once than it allows.
"""

import asyncio
from pathlib import Path

from tests.api.test_executions import all_events, max_overlap, step
from tests.conftest import Service


def capped(gate: Path, *step_ids: str, agent: str = "builder") -> list[dict]:
    return [
        {**step(step_id, wait_for_file=str(gate), sleep=0.1), "agent": agent}
        for step_id in step_ids
    ]


def body(*steps: dict, profile: str = "capped") -> dict:
    return {
        "plan": {"steps": list(steps)},
        "config": {"profile": profile, "max_parallel": 8, "fail_fast": False},
    }


async def wait_for_starts(service: Service, execution_ids: list[str], n: int) -> None:
    async with asyncio.timeout(60):
        while True:
            started = 0
            for execution_id in execution_ids:
                events = await all_events(service, execution_id)
                started += sum(e["type"] == "step.started" for e in events)
            if started >= n:
                return
            await asyncio.sleep(0.05)


async def runs_of(service: Service, execution_id: str) -> list[dict]:
    return (await service.client.get(f"/executions/{execution_id}/runs")).json()


class TestRunnerCaps:
    async def test_a_fan_out_runs_no_more_than_the_profile_allows(
        self, service: Service, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        steps = capped(gate, *(f"build-{n}" for n in range(6)))

        created = await service.submit("Build", **body(*steps))
        await wait_for_starts(service, [created["id"]], 2)
        gate.touch()
        execution = await service.wait_finished(created["id"])

        runs = await runs_of(service, execution["id"])
        assert execution["status"] == "succeeded"
        assert len(runs) == 6
        assert max_overlap(runs) == 2

    async def test_the_cap_holds_across_executions(
        self, service: Service, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        bodies = [body(*capped(gate, "a", "b", "c")) for _ in range(2)]

        created = [await service.submit("Build", **each) for each in bodies]
        await wait_for_starts(service, [e["id"] for e in created], 2)
        gate.touch()
        finished = await asyncio.gather(
            *(service.wait_finished(execution["id"]) for execution in created)
        )

        runs = [run for e in finished for run in await runs_of(service, e["id"])]
        assert [e["status"] for e in finished] == ["succeeded", "succeeded"]
        assert len(runs) == 6
        assert max_overlap(runs) == 2

    async def test_an_agent_with_its_own_cap_has_its_own_pool(
        self, service: Service, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        steps = [
            *capped(gate, "docs-1", "docs-2", "docs-3", agent="docs"),
            *capped(gate, "build-1", "build-2", "build-3", "build-4"),
        ]

        created = await service.submit("Build", **body(*steps))
        await wait_for_starts(service, [created["id"]], 3)
        gate.touch()
        execution = await service.wait_finished(created["id"])

        runs = await runs_of(service, execution["id"])
        docs = [run for run in runs if run["agent"] == "docs"]
        builds = [run for run in runs if run["agent"] == "builder"]
        assert max_overlap(docs) == 1
        assert max_overlap(builds) == 2
        assert max_overlap(runs) == 3

    async def test_a_profile_without_a_cap_is_not_held_back(
        self, service: Service, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        steps = capped(gate, "a", "b", "c", "d")

        created = await service.submit("Build", **body(*steps, profile="scripted"))
        await wait_for_starts(service, [created["id"]], 4)
        gate.touch()
        execution = await service.wait_finished(created["id"])

        assert max_overlap(await runs_of(service, execution["id"])) == 4

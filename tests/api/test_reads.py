from tests.conftest import Service


class TestListing:
    async def test_executions_are_listed_newest_first_and_paginated(
        self, service: Service
    ) -> None:
        ids = [
            (await service.submit(f"Task {i}", config={"dry_run": True}))["id"]
            for i in range(3)
        ]
        page = (await service.client.get("/executions?limit=2")).json()
        assert page["total"] == 3
        assert [e["id"] for e in page["items"]] == ids[::-1][:2]
        rest = (await service.client.get("/executions?limit=2&offset=2")).json()
        assert [e["id"] for e in rest["items"]] == [ids[0]]

    async def test_executions_can_be_filtered_by_status(self, service: Service) -> None:
        await service.submit("Planned", config={"dry_run": True})
        ran = await service.run("Fix bug in node X")
        page = (await service.client.get("/executions?status=succeeded")).json()
        assert [e["id"] for e in page["items"]] == [ran["id"]]

    async def test_an_unknown_status_filter_is_refused(self, service: Service) -> None:
        response = await service.client.get("/executions?status=done")
        assert response.status_code == 422


class TestEvents:
    async def test_events_after_a_seq_continue_from_there(
        self, service: Service
    ) -> None:
        execution = await service.run("Fix bug in node X")
        url = f"/executions/{execution['id']}/events"
        everything = (await service.client.get(url)).json()["items"]
        first = (await service.client.get(url, params={"limit": 3})).json()
        rest = (
            await service.client.get(url, params={"after_seq": first["next_after_seq"]})
        ).json()
        assert first["items"] + rest["items"] == everything
        assert rest["finished"] and not first["finished"]


class TestHealth:
    async def test_liveness_and_readiness_answer(self, service: Service) -> None:
        assert (await service.client.get("/healthz")).json() == {"status": "ok"}
        ready = await service.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok"


class TestEventsEnd:
    async def test_a_reader_caught_up_with_a_finished_execution_is_told_so(
        self, service: Service
    ) -> None:
        execution = await service.run("Fix bug in node X")
        url = f"/executions/{execution['id']}/events"
        page = (
            await service.client.get(url, params={"after_seq": execution["last_seq"]})
        ).json()
        assert page == {
            "items": [],
            "next_after_seq": execution["last_seq"],
            "finished": True,
        }

    async def test_after_seq_past_the_last_event_is_a_422(
        self, service: Service
    ) -> None:
        created = await service.submit("x", config={"dry_run": True})
        response = await service.client.get(
            f"/executions/{created['id']}/events", params={"after_seq": 500}
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"]["last_seq"] == 3


class TestProfiles:
    async def test_profiles_are_listed_without_their_command_lines(
        self, service: Service
    ) -> None:
        profiles = (await service.client.get("/profiles")).json()
        by_name = {profile["name"]: profile for profile in profiles}
        assert by_name["simulated"]["default"] is True
        assert by_name["scripted"]["runners"]["builder"] == "command"
        assert "scripted.py" not in str(profiles)

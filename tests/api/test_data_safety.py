"""Bytes and sizes the two databases could disagree about, from agents and callers.

Each test runs once on SQLite and once on PostgreSQL and compares what the API
returns with the same hand-written cleaned values, so both databases must read
back alike. The service runs with the smallest caps the settings allow.
"""

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text

from app.settings import Settings
from tests.api.test_executions import all_events, runs_by_step, scripted, step
from tests.conftest import Service, start_service

MAX_OUTPUT_BYTES = 1024
MAX_LINE_BYTES = 64
JSON_COLUMNS = {
    "runs": ["output", "details"],
    "events": ["data"],
    "shared_state": ["value"],
}


@pytest.fixture
async def capped(make_settings: Callable[..., Settings]) -> AsyncIterator[Service]:
    settings = make_settings(
        max_output_bytes=MAX_OUTPUT_BYTES, max_log_line_bytes=MAX_LINE_BYTES
    )
    async with start_service(settings) as running:
        yield running


async def log_lines(service: Service, execution_id: str, step_id: str) -> list[str]:
    events = await all_events(service, execution_id)
    return [
        event["data"]["line"]
        for event in events
        if event["type"] == "step.log" and event["step_id"] == step_id
    ]


async def state_items(service: Service, execution_id: str) -> list[tuple[str, Any]]:
    response = await service.client.get(f"/executions/{execution_id}/state")
    assert response.status_code == 200, response.text
    return [(entry["key"], entry["value"]) for entry in response.json()]


def json_size(value: Any) -> int:
    return len(json.dumps(value))


def assert_truncated_preview(value: Any, full: Any) -> None:
    """A value cut to a preview of its JSON that fits under the output cap."""
    encoded = json.dumps(full)
    assert value["truncated"] is True
    assert value["size_bytes"] == len(encoded)
    assert value["preview"]
    assert encoded.startswith(value["preview"])
    assert json_size(value) <= MAX_OUTPUT_BYTES


class TestLogLines:
    async def test_nul_invalid_utf8_and_control_bytes_are_stored_alike(
        self, capped: Service
    ) -> None:
        raw = (
            "nul \x00 here\n"
            "bad \xff\xfe bytes\n"
            "cesu \xed\xa0\x80 half\n"
            "esc \x1b[31mred\x1b[0m bell \x07\n"
            "\x00\x00\n"
            "crlf\r\n"
            "no newline at the end"
        )
        execution = await capped.run("x", **scripted(step("odd", raw_stdout=raw)))
        assert execution["status"] == "succeeded"
        assert await log_lines(capped, execution["id"], "odd") == [
            "nul \ufffd here",
            "bad \ufffd\ufffd bytes",
            "cesu \ufffd\ufffd\ufffd half",
            "esc \x1b[31mred\x1b[0m bell \x07",
            "\ufffd\ufffd",
            "crlf",
            "no newline at the end",
        ]

    async def test_a_line_over_the_cap_is_cut_on_a_character_with_a_marker(
        self, capped: Service
    ) -> None:
        body = scripted(step("wide", long_line={"text": "é", "times": 100}))
        execution = await capped.run("x", **body)
        [line] = await log_lines(capped, execution["id"], "wide")
        assert line == "é" * 20 + " [line cut at 64 bytes]"
        assert len(line.encode()) <= MAX_LINE_BYTES

    async def test_a_line_that_grows_past_the_cap_when_cleaned_is_truncated(
        self, capped: Service
    ) -> None:
        body = scripted(step("nuls", raw_stdout="\x00" * 40 + "\n"))
        execution = await capped.run("x", **body)
        [line] = await log_lines(capped, execution["id"], "nuls")
        assert line == "\ufffd" * 8 + "... [truncated 96 bytes]"
        assert len(line.encode()) <= MAX_LINE_BYTES


class TestOutputs:
    async def test_nul_in_json_strings_and_keys_becomes_a_replacement_character(
        self, capped: Service
    ) -> None:
        raw = json.dumps(
            {
                "output": {
                    "k\x00": "a\x00b",
                    "list": ["\x00"],
                    "big": 2**70,
                    "negative_zero": -0.0,
                    "huge": 1e308,
                    "emoji": "😀 登录",
                }
            }
        )
        body = scripted(step("odd", raw_result=raw), step("next", ["odd"]))
        execution = await capped.run("x", **body)
        assert execution["status"] == "succeeded"
        cleaned = {
            "k\ufffd": "a\ufffdb",
            "list": ["\ufffd"],
            "big": 2**70,
            "negative_zero": -0.0,
            "huge": 1e308,
            "emoji": "😀 登录",
        }
        runs = await runs_by_step(capped, execution["id"])
        assert runs["odd"]["output"] == cleaned
        assert runs["next"]["output"]["upstream"] == {"odd": cleaned}

    async def test_lone_surrogates_in_a_stdout_result_line_are_replaced(
        self, capped: Service
    ) -> None:
        line = '{"output": {"\\ud800": "x\\udfff", "pair": "\\ud83d\\ude00"}}'
        body = scripted(step("odd", lines=[line], no_result=True))
        execution = await capped.run("x", **body)
        runs = await runs_by_step(capped, execution["id"])
        assert runs["odd"]["output"] == {"\ufffd": "x\ufffd", "pair": "😀"}
        assert await log_lines(capped, execution["id"], "odd") == [line]

    async def test_stdout_kept_as_the_output_is_cleaned_like_log_lines(
        self, capped: Service
    ) -> None:
        body = scripted(step("odd", raw_stdout="a\x00b\xffc\n", no_result=True))
        execution = await capped.run("x", **body)
        runs = await runs_by_step(capped, execution["id"])
        assert runs["odd"]["output"] == {
            "stdout": "a\ufffdb\ufffdc\n",
            "truncated": False,
            "stdout_bytes": 6,
        }

    async def test_stdout_over_the_cap_becomes_a_preview_under_the_cap(
        self, capped: Service
    ) -> None:
        long_line = {"text": "x", "times": 3000}
        body = scripted(step("loud", long_line=long_line, no_result=True))
        execution = await capped.run("x", **body)
        runs = await runs_by_step(capped, execution["id"])
        kept = {"stdout": "x" * MAX_OUTPUT_BYTES, "truncated": True}
        assert_truncated_preview(runs["loud"]["output"], kept | {"stdout_bytes": 3001})

    async def test_a_result_whose_json_grows_past_the_cap_stays_under_it(
        self, capped: Service
    ) -> None:
        # backslashes double each time the preview is written as JSON again
        value = "\\" * 256 + "é" * 240
        raw = json.dumps({"output": value}, ensure_ascii=False)
        assert len(raw.encode()) <= MAX_OUTPUT_BYTES < json_size(value)
        execution = await capped.run("x", **scripted(step("odd", raw_result=raw)))
        runs = await runs_by_step(capped, execution["id"])
        assert runs["odd"]["status"] == "succeeded"
        assert_truncated_preview(runs["odd"]["output"], value)

    async def test_a_result_file_over_the_cap_fails_the_step_plainly(
        self, capped: Service
    ) -> None:
        raw = json.dumps({"output": "x" * 2000})
        execution = await capped.run("x", **scripted(step("huge", raw_result=raw)))
        runs = await runs_by_step(capped, execution["id"])
        assert runs["huge"]["status"] == "failed"
        assert runs["huge"]["error"] == "result file is larger than 1024 bytes"
        assert runs["huge"]["output"] is None


class TestErrors:
    async def test_stderr_with_nul_and_invalid_utf8_is_cleaned_in_the_details(
        self, capped: Service
    ) -> None:
        odd = step("odd", raw_stderr="boom \x00 \xff\n", exit=3, stderr="tail")
        execution = await capped.run("x", **scripted(odd))
        runs = await runs_by_step(capped, execution["id"])
        details = {"exit_code": 3, "stderr_tail": "boom \ufffd \ufffd\ntail\n"}
        assert runs["odd"]["error"] == "command exited with code 3"
        assert runs["odd"]["details"] == details
        events = await all_events(capped, execution["id"])
        [failed] = [e for e in events if e["type"] == "step.failed"]
        assert failed["data"]["details"] == details

    async def test_stderr_over_the_cap_becomes_a_preview_under_the_cap(
        self, capped: Service
    ) -> None:
        odd = step("odd", raw_stderr="e" * 5000, exit=3, stderr="")
        execution = await capped.run("x", **scripted(odd))
        runs = await runs_by_step(capped, execution["id"])
        tail = ("e" * 5000 + "\n")[-4096:]
        full = {"exit_code": 3, "stderr_tail": tail}
        assert_truncated_preview(runs["odd"]["details"], full)


class TestState:
    async def test_values_and_nested_keys_are_cleaned_and_read_back_in_key_order(
        self, capped: Service
    ) -> None:
        state = {
            "nul": "a\x00",
            "nested": {"k\x00": ["\ud800"]},
            "B": 1,
            "a": 2,
            "_z": 3,
            "é": "😀",
        }
        raw = json.dumps({"output": 1, "state": state})
        body = scripted(step("odd", raw_result=raw), step("next", ["odd"]))
        execution = await capped.run("x", **body)
        assert execution["status"] == "succeeded"
        cleaned = {
            "nul": "a\ufffd",
            "nested": {"k\ufffd": ["\ufffd"]},
            "B": 1,
            "a": 2,
            "_z": 3,
            "é": "😀",
        }
        # code point order, whatever the collation of the PostgreSQL database
        assert await state_items(capped, execution["id"]) == sorted(cleaned.items())
        runs = await runs_by_step(capped, execution["id"])
        assert runs["next"]["output"]["state_seen"] == cleaned

    @pytest.mark.parametrize("key", ["a\x00b", "half \ud800"])
    async def test_a_key_no_database_can_store_fails_the_step(
        self, capped: Service, key: str
    ) -> None:
        raw = json.dumps({"output": 1, "state": {key: 1, "fine": 2}})
        execution = await capped.run("x", **scripted(step("odd", raw_result=raw)))
        runs = await runs_by_step(capped, execution["id"])
        assert runs["odd"]["status"] == "failed"
        assert runs["odd"]["error"] == "state keys must be valid text without NUL"
        assert await state_items(capped, execution["id"]) == []

    async def test_a_key_of_200_four_byte_characters_is_kept(
        self, capped: Service
    ) -> None:
        key = "😀" * 200
        raw = json.dumps({"output": 1, "state": {key: "v"}}, ensure_ascii=False)
        execution = await capped.run("x", **scripted(step("wide", raw_result=raw)))
        assert execution["status"] == "succeeded"
        assert await state_items(capped, execution["id"]) == [(key, "v")]

    async def test_a_value_over_the_cap_becomes_a_preview_under_the_cap(
        self, capped: Service
    ) -> None:
        value = "é" * 400
        raw = json.dumps({"output": 1, "state": {"big": value}}, ensure_ascii=False)
        execution = await capped.run("x", **scripted(step("odd", raw_result=raw)))
        [(key, stored)] = await state_items(capped, execution["id"])
        assert key == "big"
        assert_truncated_preview(stored, value)


class TestStoredJson:
    async def test_every_stored_value_can_be_read_by_the_databases_json_functions(
        self, capped: Service
    ) -> None:
        raw = json.dumps({"output": {"k\x00": "\x00"}, "state": {"s": "\x00"}})
        body = scripted(
            step("out", raw_stdout="nul \x00\n", raw_result=raw),
            step("err", raw_stderr="nul \x00\n", exit=3),
            fail_fast=False,
        )
        execution = await capped.run("x", **body)
        assert execution["status"] == "partial"

        database = capped.app.state.database
        # jsonb (PostgreSQL) refuses \u0000, which its json type lets through
        parse = "json({})" if database.is_sqlite else "CAST({} AS jsonb)"
        async with database.engine.connect() as connection:
            for table, columns in JSON_COLUMNS.items():
                for column in columns:
                    query = f"SELECT {parse.format(column)} FROM {table}"
                    rows = (await connection.execute(text(query))).all()
                    assert rows, (table, column)


def put(body: dict, path: tuple, value: Any) -> dict:
    *parents, last = path
    place: Any = body
    for part in parents:
        place = place[part]
    place[last] = value
    return body


def request_body() -> dict:
    return {
        "task": "t",
        "config": {"profile": "scripted"},
        "plan": {"steps": [{"id": "a", "agent": "builder"}]},
    }


class TestUnstorableInput:
    async def refused(self, service: Service, content: bytes) -> dict:
        response = await service.client.post(
            "/executions", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert (await service.client.get("/executions")).json()["total"] == 0
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        return error

    @pytest.mark.parametrize("bad", ["nul \x00", "lone \ud800", "\udfff tail"])
    @pytest.mark.parametrize(
        "path",
        [
            ("task",),
            ("config", "profile"),
            ("plan", "steps", 0, "title"),
            ("plan", "steps", 0, "instructions"),
        ],
    )
    async def test_text_fields_refuse_it_naming_the_field_and_the_problem(
        self, service: Service, path: tuple, bad: str
    ) -> None:
        body = put(request_body(), path, bad)
        error = await self.refused(service, json.dumps(body).encode())
        [problem] = error["details"]["errors"]
        assert problem["field"] == "body." + ".".join(map(str, path))
        assert any(word in problem["problem"].lower() for word in ("nul", "unicode"))

    @pytest.mark.parametrize("bad", ["\x00", "\ud800"])
    @pytest.mark.parametrize(
        ("path", "as_list", "field"),
        [
            (("plan", "steps", 0, "id"), False, "body.plan.steps.0.id"),
            (("plan", "steps", 0, "agent"), False, "body.plan.steps.0.agent"),
            (
                ("plan", "steps", 0, "depends_on"),
                True,
                "body.plan.steps.0.depends_on.0",
            ),
        ],
    )
    async def test_ids_and_names_refuse_it_naming_the_field(
        self, service: Service, path: tuple, as_list: bool, field: str, bad: str
    ) -> None:
        body = put(request_body(), path, [bad] if as_list else bad)
        error = await self.refused(service, json.dumps(body).encode())
        assert error["details"]["errors"][0]["field"] == field

    @pytest.mark.parametrize("bad", ["\x00", "\ud800"])
    async def test_an_object_key_is_refused_naming_its_object(
        self, service: Service, bad: str
    ) -> None:
        body = put(request_body(), ("config", bad), 1)
        error = await self.refused(service, json.dumps(body).encode())
        assert error["details"]["errors"][0]["field"].startswith("body.config")

    @pytest.mark.parametrize("raw", [b"\xff\xfe", b"\xed\xa0\x80", b"\xc3"])
    async def test_invalid_utf8_in_a_step_title_is_refused_with_the_error_body(
        self, service: Service, raw: bytes
    ) -> None:
        content = b'{"task": "t", "plan": {"steps": [{"id": "a", "agent": "builder", '
        content += b'"title": "' + raw + b'"}]}}'
        error = await self.refused(service, content)
        assert error["details"]["errors"][0]["field"].startswith("body")

    @pytest.mark.parametrize("suffix", ["", "/plan", "/runs", "/events", "/state"])
    @pytest.mark.parametrize("execution_id", ["%00", "%ED%A0%80", "%FF"])
    async def test_reads_of_an_unstorable_id_are_not_found(
        self, service: Service, execution_id: str, suffix: str
    ) -> None:
        response = await service.client.get(f"/executions/{execution_id}{suffix}")
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "execution_not_found"

import asyncio
import logging

import pytest

from app.runners.base import RunFailed, Usage
from app.runners.http import ACCEPT, HttpRunner
from tests.runners.peers import (
    SECRET,
    WebhookPeer,
    echo_headers_reply,
    everything_reported,
    json_reply,
    ndjson_reply,
    raw_reply,
    result_reply,
    runner_options,
    sse_event,
    sse_reply,
    status_reply,
)

KEY_VARIABLE = "PX_TEST_WEBHOOK_KEY"


@pytest.fixture
def peer():
    with WebhookPeer() as peer:
        yield peer


@pytest.fixture
def make_runner(peer):
    """Build an http runner of the peer's /hook, with options that can be changed."""

    def make(**overrides) -> HttpRunner:
        options = runner_options(**overrides)
        return HttpRunner(peer.url("/hook"), **options)

    return make


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, SECRET)


class TestHttpRequest:
    async def test_it_posts_the_step_context_as_json(
        self, peer, make_runner, make_context, progress
    ):
        context = make_context("Add a login route", upstream={"plan": {"a": 1}})

        await make_runner().run(context, progress)

        (request,) = peer.requests
        assert (request.method, request.path) == ("POST", "/hook")
        assert request.headers["content-type"] == "application/json"
        assert request.json() == context.as_dict()

    async def test_it_asks_for_its_formats_and_keys_the_run(
        self, peer, make_runner, make_context, progress
    ):
        await make_runner().run(make_context(run_id="run-42"), progress)

        (request,) = peer.requests
        assert request.headers["accept"] == ACCEPT
        assert request.headers["idempotency-key"] == "run-42"

    async def test_a_repeat_of_the_attempt_sends_the_same_idempotency_key(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(status_reply(503), status_reply(429))

        await make_runner().run(make_context(run_id="run-42"), progress)

        keys = [request.headers["idempotency-key"] for request in peer.requests]
        assert keys == ["run-42"] * 3

    async def test_it_sends_the_profile_headers(
        self, peer, make_runner, make_context, progress
    ):
        runner = make_runner(headers={"X-Team": "payments"})

        await runner.run(make_context(), progress)

        assert peer.requests[0].headers["x-team"] == "payments"

    async def test_it_sends_the_key_of_the_environment_as_a_bearer_token(
        self, peer, make_runner, make_context, progress, with_key
    ):
        await make_runner(api_key_env=KEY_VARIABLE).run(make_context(), progress)

        assert peer.requests[0].headers["authorization"] == f"Bearer {SECRET}"

    async def test_the_key_is_read_when_the_step_runs(
        self, peer, make_runner, make_context, progress, monkeypatch
    ):
        runner = make_runner(api_key_env=KEY_VARIABLE)
        monkeypatch.setenv(KEY_VARIABLE, "sk-first")
        await runner.run(make_context(), progress)
        monkeypatch.setenv(KEY_VARIABLE, "sk-second")
        await runner.run(make_context(), progress)

        sent = [request.headers["authorization"] for request in peer.requests]
        assert sent == ["Bearer sk-first", "Bearer sk-second"]

    async def test_without_a_key_variable_no_authorization_is_sent(
        self, peer, make_runner, make_context, progress
    ):
        await make_runner().run(make_context(), progress)

        assert "authorization" not in peer.requests[0].headers


class TestHttpJsonReply:
    async def test_output_state_updates_and_usage_make_the_result(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(
            result_reply(
                {"files": ["api.py"]},
                state_updates={"schema": "v2"},
                usage={"input_tokens": 120, "output_tokens": 30, "cost": 0.25},
            )
        )

        result = await make_runner().run(make_context(), progress)

        assert result.output == {"files": ["api.py"]}
        assert result.state_updates == {"schema": "v2"}
        assert result.usage == Usage(input_tokens=120, output_tokens=30, cost=0.25)

    async def test_output_alone_means_no_updates_and_no_usage(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(result_reply(None))

        result = await make_runner().run(make_context(), progress)

        assert (result.output, result.state_updates, result.usage) == (None, {}, None)

    async def test_usage_fields_are_each_optional(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(result_reply("done", usage={"output_tokens": 7}))

        result = await make_runner().run(make_context(), progress)

        assert result.usage == Usage(input_tokens=0, output_tokens=7, cost=None)

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ("the build passed", "is not valid JSON"),
            ('["done"]', "is not a JSON object"),
            ('{"result": "done"}', "has no 'output'"),
            (
                '{"output": 1, "state_updates": ["schema"]}',
                "has a 'state_updates' that is not a JSON object",
            ),
            ('{"output": 1, "usage": [3]}', "has a 'usage' that is not a JSON object"),
            (
                '{"output": 1, "usage": {"input_tokens": "ten"}}',
                "has a 'usage.input_tokens' that is not a whole number >= 0",
            ),
            (
                '{"output": 1, "usage": {"output_tokens": -1}}',
                "has a 'usage.output_tokens' that is not a whole number >= 0",
            ),
            (
                '{"output": 1, "usage": {"cost": "free"}}',
                "has a 'usage.cost' that is not a number >= 0",
            ),
            ('{"output": NaN}', "is not valid JSON"),
        ],
    )
    async def test_a_bad_reply_fails_saying_what_is_wrong(
        self, body, problem, peer, make_runner, make_context, progress
    ):
        peer.script(raw_reply(body))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f"the reply from {peer.origin} {problem}: {body}"
        )

    async def test_another_content_type_fails_naming_it(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(raw_reply("<h1>Welcome</h1>", content_type="text/html"))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message.startswith(
            f"the reply from {peer.origin} has Content-Type 'text/html'"
        )
        assert failure.value.message.endswith(": <h1>Welcome</h1>")

    async def test_the_body_shown_in_a_failure_is_cut(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(raw_reply("z" * 5000))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message.endswith(": " + "z" * 300 + "...")

    async def test_an_error_object_fails_the_run_with_its_message(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(json_reply({"error": "the repository is archived"}))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f"{peer.origin} reported an error: the repository is archived"
        )

    async def test_a_reply_larger_than_the_limit_fails(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(result_reply("x" * 2000))

        with pytest.raises(RunFailed, match="larger than 1000 bytes"):
            await make_runner(max_output_bytes=1000).run(make_context(), progress)


class TestHttpStreams:
    async def test_ndjson_logs_are_progress_and_the_output_object_the_result(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(
            ndjson_reply(
                {"log": "cloning the repository"},
                {"log": "building\ntesting"},
                {"heartbeat": 1},
                {"output": "merged", "state_updates": {"branch": "login"}},
            )
        )

        result = await make_runner().run(make_context(), progress)

        assert progress.lines == ["cloning the repository", "building", "testing"]
        assert result.output == "merged"
        assert result.state_updates == {"branch": "login"}

    async def test_sse_events_are_read_with_multi_line_data_joined(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(
            sse_reply(
                ": connected\n\n",
                sse_event({"log": "planning"}, event="progress"),
                sse_event('{"log":\n"coding"}'),
                sse_event({"output": {"ok": True}, "usage": {"input_tokens": 9}}),
            )
        )

        result = await make_runner().run(make_context(), progress)

        assert progress.lines == ["planning", "coding"]
        assert result.output == {"ok": True}
        assert result.usage == Usage(input_tokens=9)

    async def test_a_stream_without_a_result_fails(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(ndjson_reply({"log": "working"}))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f"the stream from {peer.origin} ended without a result"
        )
        assert progress.lines == ["working"]

    async def test_a_line_that_is_not_an_object_fails_naming_it(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(
            raw_reply('{"log": "one"}\n["two"]\n', content_type="application/x-ndjson")
        )

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f'line 2 of the stream from {peer.origin} is not a JSON object: ["two"]'
        )

    async def test_a_bad_result_in_an_event_fails_naming_it(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(sse_reply(sse_event({"output": 1, "state_updates": "v2"})))

        with pytest.raises(RunFailed, match="^event 1 of the stream .* 'state_upd"):
            await make_runner().run(make_context(), progress)

    async def test_an_error_in_the_stream_fails_the_run(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(ndjson_reply({"log": "testing"}, {"error": "3 tests failed"}))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert (
            failure.value.message == f"{peer.origin} reported an error: 3 tests failed"
        )

    async def test_the_stream_is_not_read_beyond_its_result(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(ndjson_reply({"output": "early"}, hold=True))

        result = await make_runner().run(make_context(), progress)

        assert result.output == "early"
        assert await peer.saw_disconnect()

    async def test_log_lines_are_cut_to_the_line_limit(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(ndjson_reply({"log": "v" * 500}, {"output": 1}))

        await make_runner(max_log_line_bytes=100).run(make_context(), progress)

        (line,) = progress.lines
        assert len(line.encode()) <= 100
        assert line.endswith("[line cut at 100 bytes]")

    async def test_cancelling_mid_stream_closes_the_connection(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(ndjson_reply({"log": "started the build"}, hold=True))
        task = asyncio.create_task(make_runner().run(make_context(), progress))
        await progress.wait_for_line("started the build")

        task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await task
        assert await peer.saw_disconnect(timeout=10)


class TestHttpErrorReplies:
    async def test_a_client_error_fails_with_the_status_and_body(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(json_reply({"detail": "no such hook"}, status=404))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f'HTTP 404 from {peer.origin}: {{"detail": "no such hook"}}'
        )
        assert failure.value.details["status"] == 404
        assert len(peer.requests) == 1

    async def test_a_server_error_is_retried_then_given_up(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(*[status_reply(500)] * 3)

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message.startswith(
            f"HTTP 500 from {peer.origin} after 3 tries"
        )
        assert failure.value.details["status"] == 500
        assert len(progress.lines) == 2


class TestHttpSecrets:
    async def test_a_key_echoed_in_an_error_body_is_removed(
        self, peer, make_runner, make_context, progress, with_key
    ):
        peer.script(echo_headers_reply(401))

        with pytest.raises(RunFailed) as failure:
            runner = make_runner(api_key_env=KEY_VARIABLE)
            await runner.run(make_context(), progress)

        assert "Bearer ***" in failure.value.message
        assert SECRET not in everything_reported(failure.value, progress)

    async def test_a_key_echoed_in_progress_and_in_a_stream_error_is_removed(
        self, peer, make_runner, make_context, progress, with_key
    ):
        peer.script(
            ndjson_reply(
                {"log": f"got the token {SECRET}"},
                {"error": f"token {SECRET} is not allowed here"},
            )
        )

        with pytest.raises(RunFailed) as failure:
            runner = make_runner(api_key_env=KEY_VARIABLE)
            await runner.run(make_context(), progress)

        assert progress.lines == ["got the token ***"]
        assert failure.value.message.endswith("token *** is not allowed here")
        assert SECRET not in everything_reported(failure.value, progress)

    async def test_a_key_echoed_in_a_bad_reply_is_removed(
        self, peer, make_runner, make_context, progress, with_key
    ):
        peer.script(json_reply({"seen": f"Bearer {SECRET}"}))

        with pytest.raises(RunFailed) as failure:
            runner = make_runner(api_key_env=KEY_VARIABLE)
            await runner.run(make_context(), progress)

        assert "has no 'output'" in failure.value.message
        assert SECRET not in everything_reported(failure.value, progress)

    async def test_a_key_echoed_in_the_output_and_state_is_removed(
        self, peer, make_runner, make_context, progress, with_key
    ):
        peer.script(
            result_reply(
                {"said": f"called with {SECRET}"},
                state_updates={"auth": [SECRET], f"key-{SECRET}": 1},
            )
        )

        runner = make_runner(api_key_env=KEY_VARIABLE)
        result = await runner.run(make_context(), progress)

        assert result.output == {"said": "called with ***"}
        assert result.state_updates == {"auth": ["***"], "key-***": 1}

    async def test_a_missing_key_variable_fails_naming_it_and_sends_nothing(
        self, peer, make_runner, make_context, progress, monkeypatch
    ):
        monkeypatch.delenv(KEY_VARIABLE, raising=False)

        with pytest.raises(RunFailed) as failure:
            runner = make_runner(api_key_env=KEY_VARIABLE)
            await runner.run(make_context(), progress)

        assert KEY_VARIABLE in failure.value.message
        assert failure.value.details == {"api_key_env": KEY_VARIABLE}
        assert peer.requests == []

    async def test_the_key_never_reaches_the_logs(
        self, peer, make_runner, make_context, progress, with_key, caplog
    ):
        caplog.set_level(logging.DEBUG)

        await make_runner(api_key_env=KEY_VARIABLE).run(make_context(), progress)

        assert any(record.name == "httpx" for record in caplog.records)
        assert SECRET not in caplog.text


class TestHttpRunnerOptions:
    def test_its_kind_is_http(self, make_runner):
        assert make_runner().kind == "http"

    @pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "/hook", "127.0.0.1"])
    def test_a_url_that_is_not_http_is_refused(self, url):
        with pytest.raises(ValueError, match="not an http or https URL"):
            HttpRunner(url, max_output_bytes=1024, max_log_line_bytes=256)

    @pytest.mark.parametrize(
        "name", ["Authorization", "idempotency-key", "Accept", "Content-Type"]
    )
    def test_headers_the_runner_sets_itself_are_refused(self, name, make_runner):
        with pytest.raises(ValueError, match=name):
            make_runner(headers={name: "x"})

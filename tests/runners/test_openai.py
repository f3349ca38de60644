import asyncio

import pytest

from app.planning.models import Agent
from app.runners.base import RunFailed, Usage
from app.runners.openai import OpenAIRunner, Price
from app.runners.prompts import DEFAULT_SYSTEM_PROMPTS, system_prompt_for
from tests.runners.peers import (
    SECRET,
    OpenAIPeer,
    chunk,
    completion,
    completion_reply,
    echo_headers_reply,
    everything_reported,
    json_reply,
    raw_reply,
    runner_options,
    sse_event,
    sse_reply,
    status_reply,
)

KEY_VARIABLE = "PX_TEST_MODEL_KEY"
MODEL = "coder-7b"


@pytest.fixture
def peer():
    with OpenAIPeer() as peer:
        yield peer


@pytest.fixture
def make_runner(peer):
    """Build an openai runner of the peer's /v1, with options that can be changed."""

    def make(**overrides) -> OpenAIRunner:
        options = runner_options(**overrides)
        return OpenAIRunner(peer.url("/v1"), MODEL, **options)

    return make


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, SECRET)


class TestOpenAIRequest:
    @pytest.mark.parametrize("base_path", ["/v1", "/v1/"])
    async def test_it_posts_to_chat_completions_under_the_base_url(
        self, base_path, peer, make_context, progress
    ):
        runner = OpenAIRunner(
            peer.url(base_path), MODEL, max_output_bytes=4096, max_log_line_bytes=256
        )

        await runner.run(make_context(), progress)

        (request,) = peer.requests
        assert (request.method, request.path) == ("POST", "/v1/chat/completions")

    async def test_it_sends_the_model_the_agents_prompt_and_the_step(
        self, peer, make_runner, make_context, progress
    ):
        context = make_context("Add a login route", agent="security")

        await make_runner().run(context, progress)

        body = peer.requests[0].json()
        assert body["model"] == MODEL
        assert body["messages"] == [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPTS["security"]},
            {"role": "user", "content": context.prompt()},
        ]

    async def test_the_profiles_system_prompt_replaces_the_default(
        self, peer, make_runner, make_context, progress
    ):
        runner = make_runner(system_prompt="Answer in haiku.")

        await runner.run(make_context(), progress)

        system = peer.requests[0].json()["messages"][0]
        assert system == {"role": "system", "content": "Answer in haiku."}

    async def test_the_parameters_are_sent_alongside(
        self, peer, make_runner, make_context, progress
    ):
        runner = make_runner(parameters={"temperature": 0.2, "max_tokens": 800})

        await runner.run(make_context(), progress)

        body = peer.requests[0].json()
        assert (body["temperature"], body["max_tokens"]) == (0.2, 800)

    async def test_streaming_asks_for_the_usage_in_the_stream(
        self, peer, make_runner, make_context, progress
    ):
        await make_runner().run(make_context(), progress)

        body = peer.requests[0].json()
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert peer.requests[0].headers["accept"] == "text/event-stream"

    async def test_without_streaming_no_stream_keys_are_sent(
        self, peer, make_runner, make_context, progress
    ):
        await make_runner(stream=False).run(make_context(), progress)

        body = peer.requests[0].json()
        assert set(body) == {"model", "messages"}

    async def test_the_key_of_the_environment_is_sent_as_a_bearer_token(
        self, peer, make_runner, make_context, progress, with_key
    ):
        await make_runner(api_key_env=KEY_VARIABLE).run(make_context(), progress)

        assert peer.requests[0].headers["authorization"] == f"Bearer {SECRET}"

    @pytest.mark.parametrize("name", ["model", "messages", "stream"])
    def test_parameters_the_runner_sets_itself_are_refused(self, name, make_runner):
        with pytest.raises(ValueError, match=name):
            make_runner(parameters={name: "x"})

    def test_its_kind_is_openai(self, make_runner):
        assert make_runner().kind == "openai"


class TestOpenAIStreamedAnswer:
    async def test_the_output_is_the_whole_text(
        self, peer, make_runner, make_context, progress
    ):
        result = await make_runner().run(make_context(), progress)

        assert result.output == OpenAIPeer.DEFAULT_TEXT
        assert result.state_updates == {}

    async def test_progress_comes_one_line_per_completed_line_of_text(
        self, peer, make_runner, make_context, progress
    ):
        text = "Reading the code.\n\nWriting login.py\nRunning tests: ok"
        peer.script(completion_reply(text, piece_chars=4))

        result = await make_runner().run(make_context(), progress)

        assert result.output == text
        assert progress.lines == [
            "Reading the code.",
            "Writing login.py",
            "Running tests: ok",
        ]

    async def test_usage_comes_from_the_usage_chunk_and_is_priced(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(completion_reply("done", usage=(1000, 500)))
        # priced by the configured model, not by the name the server reports
        prices = {MODEL: Price(input_per_million=3.0, output_per_million=15.0)}

        result = await make_runner(prices=prices).run(make_context(), progress)

        assert result.usage.input_tokens == 1000
        assert result.usage.output_tokens == 500
        assert result.usage.cost == pytest.approx(0.003 + 0.0075)

    async def test_without_a_price_for_the_model_the_cost_is_unknown(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(completion_reply("done", usage=(10, 4)))
        prices = {"another-model": Price(1.0, 1.0)}

        result = await make_runner(prices=prices).run(make_context(), progress)

        assert result.usage == Usage(input_tokens=10, output_tokens=4, cost=None)

    async def test_without_usage_from_the_server_there_is_none(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(completion_reply("done", usage=None))

        result = await make_runner().run(make_context(), progress)

        assert result.usage is None

    async def test_an_error_chunk_fails_the_run_with_its_message(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(
            sse_reply(
                sse_event(chunk("Partial answer\n")),
                sse_event({"error": {"message": "the model ran out of memory"}}),
            )
        )

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f"{peer.origin} reported an error: the model ran out of memory"
        )
        assert progress.lines == ["Partial answer"]

    async def test_a_stream_that_ends_before_it_is_done_fails(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(sse_reply(sse_event(chunk("Half of an ans"))))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f"the reply from {peer.origin} ended before 'data: [DONE]'"
        )

    async def test_a_stream_with_a_finish_reason_may_end_without_done(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(
            sse_reply(
                sse_event(chunk("All done.")), sse_event(chunk(finish_reason="stop"))
            )
        )

        result = await make_runner().run(make_context(), progress)

        assert result.output == "All done."
        assert progress.lines == ["All done."]

    async def test_a_chunk_that_is_not_json_fails(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(sse_reply(sse_event("{broken")))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f"the reply from {peer.origin} has a chunk that is not valid JSON: {{broken"
        )

    async def test_a_text_larger_than_the_limit_fails(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(completion_reply("w" * 3000, piece_chars=100))

        with pytest.raises(RunFailed, match="larger than 1000 bytes"):
            await make_runner(max_output_bytes=1000).run(make_context(), progress)

    async def test_a_stream_that_stalls_fails_after_the_request_timeout(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(sse_reply(sse_event(chunk("Thinking\n")), hold=True))

        with pytest.raises(RunFailed) as failure:
            await make_runner(request_timeout_s=2.0).run(make_context(), progress)

        assert failure.value.message.startswith(
            f"the reply from {peer.origin} stalled: nothing came for 2 s"
        )
        assert progress.lines == ["Thinking"]

    async def test_cancelling_mid_stream_closes_the_connection(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(sse_reply(sse_event(chunk("Planning the change\n")), hold=True))
        task = asyncio.create_task(make_runner().run(make_context(), progress))
        await progress.wait_for_line("Planning the change")

        task.cancel()

        with pytest.raises(asyncio.CancelledError):
            await task
        assert await peer.saw_disconnect(timeout=10)

    async def test_a_whole_answer_to_a_streamed_request_is_read(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(json_reply(completion("Not streamed.", usage=(3, 2))))

        result = await make_runner().run(make_context(), progress)

        assert result.output == "Not streamed."
        assert result.usage == Usage(input_tokens=3, output_tokens=2)


class TestOpenAIWholeAnswer:
    async def test_the_output_and_usage_come_from_the_reply(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(completion_reply("Line one\nLine two", usage=(20, 8)))

        result = await make_runner(stream=False).run(make_context(), progress)

        assert result.output == "Line one\nLine two"
        assert result.usage == Usage(input_tokens=20, output_tokens=8)

    async def test_an_error_object_fails_the_run_with_its_message(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(json_reply({"error": {"message": "context length exceeded"}}))

        with pytest.raises(RunFailed) as failure:
            await make_runner(stream=False).run(make_context(), progress)

        assert failure.value.message == (
            f"{peer.origin} reported an error: context length exceeded"
        )

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ("<html>busy</html>", "is not valid JSON"),
            ('{"choices": []}', "has no 'choices[0]'"),
            ('{"choices": [{"text": "hi"}]}', "has no 'choices[0].message'"),
            (
                '{"choices": [{"message": {"content": 5}}]}',
                "has a 'content' that is not text",
            ),
            (
                '{"choices": [{"message": {"content": "hi"}}], "usage": '
                '{"prompt_tokens": "many"}}',
                "has a 'usage.prompt_tokens' that is not a whole number >= 0",
            ),
        ],
    )
    async def test_a_bad_reply_fails_saying_what_is_wrong(
        self, body, problem, peer, make_runner, make_context, progress
    ):
        peer.script(raw_reply(body))

        with pytest.raises(RunFailed) as failure:
            await make_runner(stream=False).run(make_context(), progress)

        assert failure.value.message.startswith(
            f"the reply from {peer.origin} {problem}"
        )


class TestOpenAIErrorReplies:
    async def test_an_error_reply_fails_with_the_servers_message(
        self, peer, make_runner, make_context, progress
    ):
        error = {"message": f"model '{MODEL}' not found", "type": "invalid_request"}
        peer.script(json_reply({"error": error}, status=404))

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message == (
            f"HTTP 404 from {peer.origin}: model '{MODEL}' not found"
        )
        assert failure.value.details["status"] == 404

    async def test_a_429_waits_for_its_retry_after(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(status_reply(429, retry_after="1"))

        result = await make_runner().run(make_context(), progress)

        assert result.output == OpenAIPeer.DEFAULT_TEXT
        first, second = peer.requests
        assert second.received_at - first.received_at >= 1.0
        assert progress.lines[0] == (
            f"HTTP 429 from {peer.origin}; trying again in 1.0 s (retry 1 of 2)"
        )

    async def test_an_overload_that_lasts_is_given_up(
        self, peer, make_runner, make_context, progress
    ):
        peer.script(*[status_reply(529)] * 3)

        with pytest.raises(RunFailed) as failure:
            await make_runner().run(make_context(), progress)

        assert failure.value.message.startswith(
            f"HTTP 529 from {peer.origin} after 3 tries"
        )
        assert len(peer.requests) == 3


class TestOpenAISecrets:
    async def test_a_key_echoed_in_an_error_body_is_removed(
        self, peer, make_runner, make_context, progress, with_key
    ):
        peer.script(echo_headers_reply(401))

        with pytest.raises(RunFailed) as failure:
            runner = make_runner(api_key_env=KEY_VARIABLE)
            await runner.run(make_context(), progress)

        assert "Bearer ***" in failure.value.details["body"]
        assert SECRET not in everything_reported(failure.value, progress)

    async def test_a_key_echoed_in_the_answer_is_removed_from_the_output(
        self, peer, make_runner, make_context, progress, with_key
    ):
        peer.script(completion_reply(f"the key is {SECRET}\nend"))

        runner = make_runner(api_key_env=KEY_VARIABLE)
        result = await runner.run(make_context(), progress)

        assert result.output == "the key is ***\nend"
        assert progress.lines == ["the key is ***", "end"]

    async def test_a_key_echoed_in_the_stream_is_removed(
        self, peer, make_runner, make_context, progress, with_key
    ):
        peer.script(
            sse_reply(
                sse_event(chunk(f"I was called with {SECRET}\n")),
                sse_event({"error": {"message": f"key {SECRET} is over its quota"}}),
            )
        )

        with pytest.raises(RunFailed) as failure:
            runner = make_runner(api_key_env=KEY_VARIABLE)
            await runner.run(make_context(), progress)

        assert progress.lines == ["I was called with ***"]
        assert failure.value.message.endswith("key *** is over its quota")
        assert SECRET not in everything_reported(failure.value, progress)

    async def test_a_missing_key_variable_fails_naming_it_and_sends_nothing(
        self, peer, make_runner, make_context, progress, monkeypatch
    ):
        monkeypatch.delenv(KEY_VARIABLE, raising=False)

        with pytest.raises(RunFailed, match=KEY_VARIABLE):
            runner = make_runner(api_key_env=KEY_VARIABLE)
            await runner.run(make_context(), progress)

        assert peer.requests == []


class TestPrice:
    def test_the_cost_is_per_million_tokens(self):
        price = Price(input_per_million=2.0, output_per_million=8.0)

        assert price.cost(500_000, 250_000) == pytest.approx(1.0 + 2.0)

    def test_a_negative_price_is_refused(self):
        with pytest.raises(ValueError, match="price"):
            Price(input_per_million=-1.0, output_per_million=1.0)


class TestDefaultSystemPrompts:
    def test_every_agent_has_a_prompt_of_its_own(self):
        assert set(DEFAULT_SYSTEM_PROMPTS) == {agent.value for agent in Agent}
        assert len(set(DEFAULT_SYSTEM_PROMPTS.values())) == len(Agent)

    @pytest.mark.parametrize("agent", [agent.value for agent in Agent])
    def test_each_prompt_names_the_role_and_what_to_return(self, agent):
        prompt = system_prompt_for(agent)

        assert f"You are the {agent} agent" in prompt
        assert "Your job is" in prompt
        assert "Answer " in prompt

    def test_an_unknown_agent_gets_a_generic_prompt(self):
        prompt = system_prompt_for("translator")

        assert "You are the translator agent" in prompt
        assert prompt not in DEFAULT_SYSTEM_PROMPTS.values()

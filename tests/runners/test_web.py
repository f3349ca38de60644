import json
import logging
import socket
from datetime import UTC, datetime

import pytest

from app.runners.base import RunFailed
from app.runners.web import (
    SseParser,
    WebClient,
    WebOptions,
    WebRetry,
    cut_line,
    preview,
    read_api_key,
    redact,
    redact_value,
    retry_after_seconds,
)
from tests.runners.peers import (
    PATIENCE_SECONDS,
    WebhookPeer,
    endless_reply,
    http_date,
    raw_reply,
    redirect_reply,
    slow_reply,
    status_reply,
    stream_reply,
)

SECRET = "sk-test-SECRET-123"
FAST_RETRY = WebRetry(max_retries=2, backoff_s=0.01)


@pytest.fixture
def peer():
    with WebhookPeer() as peer:
        yield peer


@pytest.fixture
def other_peer():
    with WebhookPeer() as peer:
        yield peer


@pytest.fixture
def make_web(progress):
    """Build a web client for a URL, with options that can be changed."""

    def make(url: str, *, secrets=(), **overrides) -> WebClient:
        options = {
            "retry": FAST_RETRY,
            "request_timeout_s": 30.0,
            "max_output_bytes": 64 * 1024,
            "max_log_line_bytes": 4096,
            **overrides,
        }
        return WebClient(url, WebOptions(**options), progress, secrets=secrets)

    return make


async def post(web: WebClient, payload=None, headers=None) -> bytes:
    """Send one POST and read the whole reply."""
    async with web.post(payload or {"step": "build-api"}, headers or {}) as response:
        return await web.read_body(response)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestWebRetryPolicy:
    def test_the_defaults_are_three_retries_from_half_a_second(self):
        retry = WebRetry()

        assert (retry.max_retries, retry.backoff_s) == (3, 0.5)
        assert (retry.max_backoff_s, retry.max_retry_after_s) == (30.0, 60.0)

    def test_each_backoff_doubles_and_is_jittered_within_its_upper_half(self):
        retry = WebRetry(backoff_s=0.5, max_backoff_s=100)

        for number in range(1, 6):
            ceiling = 0.5 * 2 ** (number - 1)
            waits = [retry.backoff(number) for _ in range(50)]
            assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
            assert len(set(waits)) > 1

    def test_the_backoff_is_capped(self):
        retry = WebRetry(backoff_s=1, max_backoff_s=3)

        assert 1.5 <= retry.backoff(20) <= 3

    @pytest.mark.parametrize(
        "field", ["max_retries", "backoff_s", "max_backoff_s", "max_retry_after_s"]
    )
    def test_a_negative_setting_is_refused(self, field):
        with pytest.raises(ValueError, match=field):
            WebRetry(**{field: -1})


class TestRetryAfterHeader:
    NOW = datetime(2026, 10, 21, 7, 27, 30, tzinfo=UTC)

    @pytest.mark.parametrize(("value", "seconds"), [("2", 2.0), (" 1.5 ", 1.5)])
    def test_seconds_are_read_as_a_wait(self, value, seconds):
        assert retry_after_seconds(value) == seconds

    def test_an_http_date_gives_the_time_left_until_then(self):
        wait = retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now=self.NOW)

        assert wait == 30.0

    def test_a_date_in_the_past_means_no_wait(self):
        wait = retry_after_seconds("Wed, 21 Oct 2026 07:00:00 GMT", now=self.NOW)

        assert wait == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "-1", "nan", "inf"])
    def test_a_missing_or_invalid_value_gives_none(self, value):
        assert retry_after_seconds(value) is None


class TestSecretRemoval:
    def test_every_occurrence_is_replaced(self):
        text = f"key {SECRET}, again {SECRET}"

        assert redact(text, [SECRET]) == "key ***, again ***"

    def test_an_empty_secret_changes_nothing(self):
        assert redact("plain text", [""]) == "plain text"

    def test_strings_nested_in_details_are_cleaned(self):
        details = {"body": f"Bearer {SECRET}", "more": [SECRET, 3], "status": 401}

        cleaned = redact_value(details, [SECRET])

        assert cleaned == {"body": "Bearer ***", "more": ["***", 3], "status": 401}

    def test_a_preview_removes_secrets_before_cutting(self):
        body = "x" * 290 + SECRET

        shown = preview(body, [SECRET])

        assert "sk-test" not in shown
        assert shown == "x" * 290 + "***"

    def test_a_long_preview_is_cut_to_300_characters(self):
        shown = preview("y" * 5000, [])

        assert shown == "y" * 300 + "..."


class TestCutLine:
    def test_a_short_line_is_kept_whole(self):
        assert cut_line("compiled 3 modules", 64) == "compiled 3 modules"

    def test_a_long_line_is_cut_within_the_limit_with_a_marker(self):
        line = cut_line("é" * 100, 64)

        assert len(line.encode()) <= 64
        assert line.endswith(" [line cut at 64 bytes]")
        assert line.startswith("é")


class TestApiKeyVariable:
    def test_no_variable_means_no_key(self):
        assert read_api_key(None) is None

    def test_the_key_is_read_from_the_variable(self, monkeypatch):
        monkeypatch.setenv("PX_TEST_API_KEY", SECRET)

        assert read_api_key("PX_TEST_API_KEY") == SECRET

    def test_a_missing_variable_fails_naming_it(self, monkeypatch):
        monkeypatch.delenv("PX_TEST_API_KEY", raising=False)

        with pytest.raises(RunFailed, match="PX_TEST_API_KEY") as failure:
            read_api_key("PX_TEST_API_KEY")
        assert failure.value.details == {"api_key_env": "PX_TEST_API_KEY"}

    def test_an_empty_variable_fails(self, monkeypatch):
        monkeypatch.setenv("PX_TEST_API_KEY", "  ")

        with pytest.raises(RunFailed, match="not set or is empty"):
            read_api_key("PX_TEST_API_KEY")

    def test_a_key_with_a_space_fails_without_showing_it(self, monkeypatch):
        monkeypatch.setenv("PX_TEST_API_KEY", "sk-two words")

        with pytest.raises(RunFailed) as failure:
            read_api_key("PX_TEST_API_KEY")
        assert "sk-two" not in failure.value.message


class TestSseParser:
    def feed(self, lines: list[str]) -> list[str]:
        parser = SseParser()
        events = [parser.feed(line) for line in lines]
        return [event for event in [*events, parser.finish()] if event is not None]

    def test_a_blank_line_ends_an_event(self):
        assert self.feed(["data: one", "", "data: two", ""]) == ["one", "two"]

    def test_data_lines_of_one_event_are_joined_by_newlines(self):
        assert self.feed(["data: first", "data:second", ""]) == ["first\nsecond"]

    def test_comments_and_other_fields_are_ignored(self):
        lines = [": keep-alive", "", "event: log", "id: 7", "data: x", ""]

        assert self.feed(lines) == ["x"]

    def test_an_event_left_open_at_the_end_is_taken(self):
        assert self.feed(["data: last"]) == ["last"]


class TestRetriesOnOverload:
    async def test_a_429_waits_for_its_retry_after_then_sends_again(
        self, peer, make_web, progress
    ):
        peer.script(status_reply(429, retry_after="1"))

        body = await post(make_web(peer.url(), retry=WebRetry()))

        assert json.loads(body) == {"output": "done"}
        first, second = peer.requests
        assert second.received_at - first.received_at >= 1.0
        assert progress.lines == [
            f"HTTP 429 from {peer.origin}; trying again in 1.0 s (retry 1 of 3)"
        ]

    async def test_a_retry_after_date_is_waited_for(self, peer, make_web):
        peer.script(status_reply(503, retry_after=http_date(3)))

        await post(make_web(peer.url()))

        first, second = peer.requests
        # the date has whole seconds: three from now is more than two away
        assert second.received_at - first.received_at >= 1.5

    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
    async def test_each_overload_status_is_sent_again(self, status, peer, make_web):
        peer.script(status_reply(status))

        body = await post(make_web(peer.url()))

        assert json.loads(body) == {"output": "done"}
        assert len(peer.requests) == 2

    async def test_without_retry_after_the_backoff_is_waited(self, peer, make_web):
        peer.script(status_reply(503))

        await post(make_web(peer.url(), retry=WebRetry(backoff_s=0.4)))

        first, second = peer.requests
        assert second.received_at - first.received_at >= 0.2

    async def test_an_overload_that_lasts_fails_after_the_retries(
        self, peer, make_web, progress
    ):
        peer.script(*[status_reply(503)] * 3)

        with pytest.raises(RunFailed) as failure:
            await post(make_web(peer.url()))

        assert failure.value.message.startswith(
            f"HTTP 503 from {peer.origin} after 3 tries: "
        )
        assert failure.value.details["status"] == 503
        assert len(peer.requests) == 3
        assert len(progress.lines) == 2
        assert progress.lines[1].endswith("(retry 2 of 2)")

    async def test_a_retry_after_above_the_limit_fails_at_once(
        self, peer, make_web, progress
    ):
        peer.script(status_reply(429, retry_after="120"))
        retry = WebRetry(max_retry_after_s=60)

        with pytest.raises(RunFailed) as failure:
            await post(make_web(peer.url(), retry=retry))

        assert "asks to wait 120 s" in failure.value.message
        assert "more than the 60 s allowed" in failure.value.message
        assert failure.value.details["status"] == 429
        assert len(peer.requests) == 1
        assert progress.lines == []

    @pytest.mark.parametrize("status", [400, 401, 404, 422])
    async def test_other_client_errors_are_not_retried(self, status, peer, make_web):
        peer.script(status_reply(status))

        with pytest.raises(RunFailed) as failure:
            await post(make_web(peer.url()))

        assert failure.value.message.startswith(f"HTTP {status} from {peer.origin}: ")
        assert failure.value.details["status"] == status
        assert len(peer.requests) == 1


class TestConnectionFailures:
    async def test_a_refused_connection_is_tried_again_then_fails(
        self, make_web, progress
    ):
        port = closed_port()

        with pytest.raises(RunFailed) as failure:
            await post(make_web(f"http://127.0.0.1:{port}/hook"))

        assert failure.value.message.startswith(
            f"could not connect to 127.0.0.1:{port} ("
        )
        assert failure.value.message.endswith("after 3 tries")
        assert len(progress.lines) == 2
        assert progress.lines[0].startswith(f"could not connect to 127.0.0.1:{port}")
        assert progress.lines[0].endswith("(retry 1 of 2)")


class TestRedirects:
    @pytest.mark.parametrize("status", [307, 308])
    async def test_a_redirect_to_the_same_origin_keeps_the_method_and_body(
        self, status, peer, make_web
    ):
        peer.script(redirect_reply(status, "/moved?page=2"))

        body = await post(make_web(peer.url("/hook")), {"step": "build-api"})

        assert json.loads(body) == {"output": "done"}
        first, second = peer.requests
        assert (second.method, second.path) == ("POST", "/moved?page=2")
        assert second.json() == first.json() == {"step": "build-api"}

    async def test_an_absolute_location_on_the_same_origin_is_followed(
        self, peer, make_web
    ):
        peer.script(redirect_reply(307, peer.url("/v2/hook")))

        await post(make_web(peer.url("/hook")))

        assert [request.path for request in peer.requests] == ["/hook", "/v2/hook"]

    async def test_a_redirect_to_another_origin_is_refused(
        self, peer, other_peer, make_web
    ):
        location = other_peer.url("/hook")
        peer.script(redirect_reply(307, location))

        with pytest.raises(RunFailed) as failure:
            await post(make_web(peer.url("/hook")))

        assert "redirects to another origin" in failure.value.message
        assert location in failure.value.message
        assert failure.value.details == {"status": 307, "location": location}
        assert other_peer.requests == []

    @pytest.mark.parametrize("status", [301, 302, 303])
    async def test_other_redirects_fail_naming_the_status_and_location(
        self, status, peer, make_web
    ):
        peer.script(redirect_reply(status, "/elsewhere"))

        with pytest.raises(RunFailed) as failure:
            await post(make_web(peer.url("/hook")))

        assert failure.value.message.startswith(
            f"HTTP {status} from {peer.origin} redirects to '/elsewhere'"
        )
        assert len(peer.requests) == 1

    async def test_more_than_five_redirects_in_a_row_fail(self, peer, make_web):
        peer.script(*[redirect_reply(307, "/again")] * 6)

        with pytest.raises(RunFailed, match="redirected more than 5 times"):
            await post(make_web(peer.url("/hook")))

        assert len(peer.requests) == 6


class TestTimeouts:
    async def test_a_reply_slower_than_the_request_timeout_fails(self, peer, make_web):
        peer.script(slow_reply(PATIENCE_SECONDS, raw_reply("{}")))

        with pytest.raises(RunFailed) as failure:
            await post(make_web(peer.url(), request_timeout_s=0.5))

        assert failure.value.message.startswith(
            f"no reply from {peer.origin} within 0.5 s (request_timeout_s)"
        )
        assert failure.value.details["request_timeout_s"] == 0.5
        assert len(peer.requests) == 1

    async def test_a_reply_that_stalls_mid_body_fails(self, peer, make_web):
        peer.script(stream_reply("application/json", '{"output": ', hold=True))

        with pytest.raises(RunFailed) as failure:
            await post(make_web(peer.url(), request_timeout_s=2.0))

        assert failure.value.message.startswith(
            f"the reply from {peer.origin} stalled: nothing came for 2 s"
        )
        assert await peer.saw_disconnect()


class TestBoundedReading:
    async def test_a_body_at_the_limit_is_read_whole(self, peer, make_web):
        peer.script(raw_reply(b"x" * 1000))

        body = await post(make_web(peer.url(), max_output_bytes=1000))

        assert body == b"x" * 1000

    @pytest.mark.parametrize("declared_length", [None, 10**9])
    async def test_an_endless_body_fails_past_the_limit_and_is_dropped(
        self, declared_length, peer, make_web
    ):
        peer.script(
            endless_reply(
                "application/json",
                b'{"output": "',
                b"x" * 4096,
                declared_length=declared_length,
            )
        )

        with pytest.raises(RunFailed) as failure:
            await post(make_web(peer.url(), max_output_bytes=1000))

        assert failure.value.message == (
            f"the reply from {peer.origin} is larger than 1000 bytes (max_output_bytes)"
        )
        assert await peer.saw_disconnect()

    async def test_an_endless_line_fails_past_the_limit(self, peer, make_web):
        peer.script(
            endless_reply(
                "application/x-ndjson", b"{", b"y" * 4096, declared_length=None
            )
        )
        web = make_web(peer.url(), max_output_bytes=1000)

        with pytest.raises(RunFailed, match="a line of the reply .* 1000 bytes"):
            async with web.post({}, {}) as response:
                async for _ in web.lines(response):
                    pass
        assert await peer.saw_disconnect()


class TestSecretsInWhatIsReported:
    async def test_progress_lines_lose_secrets_and_are_cut(self, make_web, progress):
        web = make_web("http://127.0.0.1:1/", secrets=[SECRET], max_log_line_bytes=100)

        await web.log(f"using {SECRET} " + "y" * 1000)

        (line,) = progress.lines
        assert line.startswith("using *** y")
        assert len(line.encode()) <= 100

    async def test_failures_lose_secrets_in_message_and_details(self, make_web):
        web = make_web("http://127.0.0.1:1/", secrets=[SECRET])

        failure = web.failure(f"echoed {SECRET}", body={"auth": f"Bearer {SECRET}"})

        assert failure.message == "echoed ***"
        assert failure.details == {"body": {"auth": "Bearer ***"}}

    async def test_no_header_value_reaches_the_logs(self, peer, make_web, caplog):
        caplog.set_level(logging.DEBUG)
        peer.script(status_reply(503))
        web = make_web(peer.url(), secrets=[SECRET])

        await post(web, headers={"Authorization": f"Bearer {SECRET}"})

        assert any(record.name == "httpx" for record in caplog.records)
        assert SECRET not in caplog.text
        assert all(SECRET not in repr(record.__dict__) for record in caplog.records)

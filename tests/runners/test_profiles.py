import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from app.errors import ProfileNotFound, ProfilesFileInvalid
from app.planning.models import Agent
from app.runners.command import CommandRunner
from app.runners.http import HttpRunner
from app.runners.openai import OpenAIRunner, Price
from app.runners.profiles import ProfileRegistry, RunnerSpec
from app.runners.simulated import SimulatedRunner
from app.settings import Settings

LOCAL_CLI = """
[profiles.local-cli]
description = "Runs my agent script for every step"
runner = "command"
command = ["python3", "./agents/agent.py", "--json"]
env = { AGENT_MODE = "ci", API_TOKEN = "operator-secret" }

[profiles.local-cli.agents.docs]
runner = "simulated"

[profiles.local-cli.agents.security]
command = ["../scanner", "--deep"]
env = { SCAN_LEVEL = "high" }
"""


def make_settings(tmp_path: Path, **fields) -> Settings:
    values = {"workdir_root": tmp_path / "runs", **fields}
    return Settings(_env_file=None, **values)


@pytest.fixture
def write_profiles(tmp_path):
    """Write a profiles file and return settings that point at it."""

    def write(text: str, **fields) -> Settings:
        path = tmp_path / "config" / "profiles.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return make_settings(tmp_path, profiles_path=path, **fields)

    return write


def load_error(settings: Settings) -> str:
    with pytest.raises(ProfilesFileInvalid) as failure:
        ProfileRegistry.load(settings)
    return str(failure.value)


class TestBuiltinProfile:
    def test_the_simulated_profile_exists_without_a_file(self, tmp_path):
        registry = ProfileRegistry.load(make_settings(tmp_path))

        assert registry.names() == ["simulated"]
        assert registry.get("simulated").spec_for(Agent.builder).kind == "simulated"

    def test_a_file_cannot_redefine_it(self, write_profiles):
        settings = write_profiles('[profiles.simulated]\nrunner = "simulated"\n')

        message = load_error(settings)

        assert "profiles.toml: profile 'simulated'" in message
        assert "cannot be redefined" in message


class TestProfilesFile:
    def test_it_adds_its_profiles_after_the_built_in_one(self, write_profiles):
        registry = ProfileRegistry.load(write_profiles(LOCAL_CLI))

        assert registry.names() == ["simulated", "local-cli"]
        assert registry.get("local-cli").description == (
            "Runs my agent script for every step"
        )

    def test_relative_arguments_are_resolved_against_the_file_folder(
        self, write_profiles, tmp_path
    ):
        profile = ProfileRegistry.load(write_profiles(LOCAL_CLI)).get("local-cli")

        folder = (tmp_path / "config").resolve()
        assert profile.default.options["command"] == [
            "python3",
            str(folder / "agents" / "agent.py"),
            "--json",
        ]
        scanner = profile.spec_for("security").options["command"][0]
        assert scanner == str(folder.parent / "scanner")

    def test_an_agent_override_picks_its_own_runner(self, write_profiles):
        profile = ProfileRegistry.load(write_profiles(LOCAL_CLI)).get("local-cli")

        assert profile.spec_for(Agent.docs) == RunnerSpec("simulated")
        assert profile.spec_for(Agent.builder).kind == "command"

    def test_an_agent_override_inherits_the_runner_and_adds_to_the_env(
        self, write_profiles
    ):
        profile = ProfileRegistry.load(write_profiles(LOCAL_CLI)).get("local-cli")

        security = profile.spec_for(Agent.security)
        assert security.kind == "command"
        assert security.options["env"] == {
            "AGENT_MODE": "ci",
            "API_TOKEN": "operator-secret",
            "SCAN_LEVEL": "high",
        }

    def test_a_simulated_profile_may_set_its_time_scale(self, write_profiles):
        settings = write_profiles(
            '[profiles.fast]\nrunner = "simulated"\ntime_scale = 0.01\n'
        )

        runner = ProfileRegistry.load(settings).runner_for("fast", Agent.builder)

        assert runner.time_scale == 0.01

    def test_an_empty_file_adds_no_profile(self, write_profiles):
        registry = ProfileRegistry.load(write_profiles(""))

        assert registry.names() == ["simulated"]


class TestProfilesFileErrors:
    def test_a_missing_file_is_named(self, tmp_path):
        missing = tmp_path / "nowhere.toml"

        message = load_error(make_settings(tmp_path, profiles_path=missing))

        assert message == f"{missing}: the profiles file does not exist"

    def test_a_file_that_cannot_be_read_is_named(self, tmp_path):
        message = load_error(make_settings(tmp_path, profiles_path=tmp_path))

        assert message.startswith(f"{tmp_path}: cannot read the profiles file")

    def test_invalid_toml_is_named(self, write_profiles):
        message = load_error(write_profiles("[profiles.broken\n"))

        assert "profiles.toml: not valid TOML" in message

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ('runner = "ray"', "unknown runner 'ray'"),
            ('runner = "command"', "runner 'command' needs a 'command'"),
            ('runner = "command"\ncommand = []', "'command' must be a non-empty list"),
            (
                'runner = "command"\ncommand = "agent --json"',
                "must be a non-empty list",
            ),
            ('runner = "command"\ncommand = ["agent", 3]', "must be a non-empty list"),
            ('runner = "simulated"\nshell = true', "unknown key 'shell'"),
            (
                'runner = "simulated"\nenv = { LEVEL = 3 }',
                "'env' values must be strings ('LEVEL' is not)",
            ),
            ('runner = "simulated"\ntime_scale = -1', "'time_scale' must be a number"),
            ('description = "no runner"', "'runner' is required"),
        ],
    )
    def test_a_bad_profile_is_named_with_its_problem(
        self, write_profiles, body, problem
    ):
        message = load_error(write_profiles(f"[profiles.mine]\n{body}\n"))

        assert "profiles.toml: profile 'mine': " in message
        assert problem in message

    def test_an_unknown_key_of_an_agent_is_named(self, write_profiles):
        text = LOCAL_CLI + "\n[profiles.local-cli.agents.ui]\nshell = true\n"

        message = load_error(write_profiles(text))

        assert "profile 'local-cli', agent 'ui': unknown key 'shell'" in message

    def test_an_unknown_agent_is_named(self, write_profiles):
        text = LOCAL_CLI + "\n[profiles.local-cli.agents.poet]\nrunner = 'simulated'\n"

        message = load_error(write_profiles(text))

        assert "profile 'local-cli', agent 'poet': unknown agent" in message

    def test_an_unknown_top_level_key_is_named(self, write_profiles):
        message = load_error(write_profiles("[runners]\nx = 1\n"))

        assert "profiles.toml: the file: unknown key 'runners'" in message

    def test_a_profile_name_unfit_for_a_url_is_refused(self, write_profiles):
        message = load_error(
            write_profiles('[profiles."my agent"]\nrunner = "simulated"')
        )

        assert "profile 'my agent': a name takes" in message

    def test_an_undefined_default_profile_is_refused(self, tmp_path):
        settings = make_settings(tmp_path, default_profile="local-cli")

        message = load_error(settings)

        assert "default profile 'local-cli' is not defined" in message


class TestGet:
    def test_an_unknown_profile_names_the_known_ones(self, write_profiles):
        registry = ProfileRegistry.load(write_profiles(LOCAL_CLI))

        with pytest.raises(ProfileNotFound) as failure:
            registry.get("remote")

        assert failure.value.message == "unknown profile 'remote'"
        assert failure.value.details == {
            "profile": "remote",
            "known": ["simulated", "local-cli"],
        }
        assert failure.value.status_code == 422


class TestRunnerFor:
    def test_a_simulated_runner_uses_the_settings_time_scale(self, tmp_path):
        registry = ProfileRegistry.load(
            make_settings(tmp_path, simulated_time_scale=0.5)
        )

        runner = registry.runner_for("simulated", Agent.builder)

        assert isinstance(runner, SimulatedRunner)
        assert runner.time_scale == 0.5

    def test_a_command_runner_uses_the_settings_limits(self, write_profiles, tmp_path):
        settings = write_profiles(
            LOCAL_CLI,
            max_output_bytes=8192,
            max_log_line_bytes=256,
            kill_grace_seconds=0.5,
        )

        runner = ProfileRegistry.load(settings).runner_for("local-cli", Agent.builder)

        assert isinstance(runner, CommandRunner)
        assert runner.workdir_root == (tmp_path / "runs").resolve()
        assert runner.env == {"AGENT_MODE": "ci", "API_TOKEN": "operator-secret"}
        assert runner.max_output_bytes == 8192
        assert runner.max_log_line_bytes == 256
        assert runner.kill_grace_seconds == 0.5

    def test_runners_are_built_once_and_shared_by_agents_without_override(
        self, write_profiles
    ):
        registry = ProfileRegistry.load(write_profiles(LOCAL_CLI))

        builder = registry.runner_for("local-cli", Agent.builder)

        assert registry.runner_for("local-cli", "builder") is builder
        assert registry.runner_for("local-cli", Agent.ui) is builder
        assert registry.runner_for("local-cli", Agent.docs) is not builder
        assert isinstance(registry.runner_for("local-cli", Agent.docs), SimulatedRunner)

    def test_an_unknown_profile_is_not_found(self, tmp_path):
        registry = ProfileRegistry.load(make_settings(tmp_path))

        with pytest.raises(ProfileNotFound):
            registry.runner_for("local-cli", Agent.builder)

    async def test_a_command_profile_runs_its_program(
        self, write_profiles, tmp_path, progress, make_context, agent_script
    ):
        (tmp_path / "config").mkdir()
        shutil.copy(agent_script, tmp_path / "config" / "agent.py")
        text = (
            "[profiles.scripted]\n"
            'runner = "command"\n'
            f"command = [{json.dumps(sys.executable)}, './agent.py']\n"
            'env = { AGENT_MODE = "ci" }\n'
        )
        runner = ProfileRegistry.load(write_profiles(text)).runner_for(
            "scripted", "builder"
        )

        async with asyncio.timeout(60):
            result = await runner.run(make_context("echo-env AGENT_MODE"), progress)

        assert result.output == {
            "stdout": "AGENT_MODE=ci\n",
            "truncated": False,
            "stdout_bytes": 14,
        }


class TestDescribe:
    def test_it_lists_each_profile_with_the_runner_of_every_agent(self, write_profiles):
        described = ProfileRegistry.load(write_profiles(LOCAL_CLI)).describe()

        assert [profile["name"] for profile in described] == ["simulated", "local-cli"]
        local = described[1]
        assert local["description"] == "Runs my agent script for every step"
        assert local["default_runner"] == "command"
        assert set(local["runners"]) == {agent.value for agent in Agent}
        assert local["runners"]["docs"] == "simulated"
        assert local["runners"]["builder"] == "command"

    def test_it_never_shows_command_lines_or_env_values(self, write_profiles):
        described = ProfileRegistry.load(write_profiles(LOCAL_CLI)).describe()

        text = json.dumps(described)
        for secret in [
            "python3",
            "agent.py",
            "scanner",
            "AGENT_MODE",
            "operator-secret",
        ]:
            assert secret not in text


MIXED = """
[profiles.mixed]
runner = "openai"
base_url = "http://127.0.0.1:11434/v1"
model = "small"
api_key_env = "MIXED_KEY"
parameters = { temperature = 0.2 }
max_concurrent = 2

[profiles.mixed.prices.small]
input_per_million = 0.5
output_per_million = 1.5

[profiles.mixed.agents.builder]
runner = "command"
command = ["claude", "-p", "--output-format", "json"]
result_format = "claude"

[profiles.mixed.agents.reviewer]
model = "large"
max_concurrent = 1

[profiles.mixed.agents.integrations]
runner = "http"
url = "http://127.0.0.1:9/steps"
headers = { X-Team = "core" }
max_retries = 0
request_timeout_seconds = 5
"""


class TestRunnersOfEveryKind:
    def test_each_agent_is_routed_to_its_own_runner(self, write_profiles):
        registry = ProfileRegistry.load(write_profiles(MIXED))

        explore = registry.runner_for("mixed", "explore")
        reviewer = registry.runner_for("mixed", "reviewer")
        builder = registry.runner_for("mixed", "builder")
        integrations = registry.runner_for("mixed", "integrations")

        assert isinstance(explore, OpenAIRunner)
        assert isinstance(reviewer, OpenAIRunner)
        assert (explore.model, reviewer.model) == ("small", "large")
        assert isinstance(builder, CommandRunner)
        assert isinstance(integrations, HttpRunner)
        assert registry.runner_for("mixed", "docs") is explore

    def test_the_profile_spec_keeps_the_options_of_its_runner_only(
        self, write_profiles
    ):
        profile = ProfileRegistry.load(write_profiles(MIXED)).get("mixed")

        explore = profile.spec_for("explore")
        assert explore.options["prices"] == {"small": Price(0.5, 1.5)}
        assert explore.options["parameters"] == {"temperature": 0.2}
        assert profile.spec_for("builder").options == {
            "command": ["claude", "-p", "--output-format", "json"],
            "result_format": "claude",
        }
        assert profile.spec_for("integrations").options["headers"] == {"X-Team": "core"}

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ('runner = "http"', "runner 'http' needs a 'url'"),
            ('runner = "http"\nurl = "ftp://x/y"', "'url' must be an http:// or"),
            ('runner = "http"\nurl = "/steps"', "'url' must be an http:// or"),
            (
                'runner = "openai"\nbase_url = "http://127.0.0.1:1/v1"',
                "runner 'openai' needs a 'model'",
            ),
            (
                'runner = "openai"\nmodel = "m"\nbase_url = "http://h/v1"\n'
                "parameters = { messages = [] }",
                "cannot set messages",
            ),
            (
                'runner = "openai"\nmodel = "m"\nbase_url = "http://h/v1"\n'
                "prices = { m = { input_per_million = 1 } }",
                "'m' takes input_per_million and output_per_million",
            ),
            (
                'runner = "http"\nurl = "http://h"\napi_key_env = "sk-123 secret"',
                "'api_key_env' must name an environment variable",
            ),
            ('runner = "http"\nurl = "http://h"\nmax_retries = -1', "0 to 20"),
            (
                'runner = "http"\nurl = "http://h"\nrequest_timeout_seconds = 0',
                "'request_timeout_seconds' must be a number of seconds above 0",
            ),
            ('runner = "simulated"\nmax_concurrent = 0', "from 1 to 1000"),
            ('runner = "command"\ncommand = ["x"]\nresult_format = "xml"', "one of"),
            (
                'runner = "http"\nurl = "http://127.0.0.1:9/"\n'
                'headers = { "Content-Length" = "5" }',
                "cannot set Content-Length: the runner sets it",
            ),
            (
                'runner = "http"\nurl = "http://127.0.0.1:9/"\n'
                'headers = { Host = "elsewhere" }',
                "cannot set Host",
            ),
            (
                'runner = "http"\nurl = "http://127.0.0.1:9/"\n'
                'headers = { X-A = "a\\r\\nX-B: b" }',
                "'X-A' holds a line break or control character",
            ),
            (
                'runner = "http"\nurl = "http://127.0.0.1:9/"\n'
                'headers = { "X A" = "b" }',
                "'X A' is not a header name",
            ),
            (
                'runner = "http"\nurl = "http://user:pw@127.0.0.1:9/"',
                "must not hold a user or password",
            ),
            (
                'runner = "http"\nurl = "http://127.0.0.1:9/"\nsystem_prompt = "x"',
                "'system_prompt' is not an option of runner 'http'",
            ),
            (
                'runner = "openai"\nbase_url = "http://h/v1"\nmodel = "m"\n'
                'headers = { X-Team = "core" }',
                "'headers' is not an option of runner 'openai'",
            ),
            ('runner = "python"', "runner 'python' needs a 'function'"),
            ('runner = "python"\nfunction = "no_colon"', "'module:callable'"),
        ],
    )
    def test_a_bad_option_is_named_with_its_problem(
        self, write_profiles, body, problem
    ):
        message = load_error(write_profiles(f"[profiles.mine]\n{body}\n"))

        assert "profiles.toml: profile 'mine'" in message
        assert problem in message

    def test_an_agent_option_its_runner_does_not_take_is_refused(self, write_profiles):
        text = MIXED + '\n[profiles.mixed.agents.docs]\ncommand = ["x"]\n'

        message = load_error(write_profiles(text))

        assert "agent 'docs': 'command' is not an option of runner 'openai'" in message

    def test_names_kept_for_in_process_functions_are_refused(self, write_profiles):
        message = load_error(
            write_profiles('[profiles."python.mine"]\nrunner = "simulated"')
        )

        assert "names starting 'python.' are kept for in-process functions" in message


class TestPythonFunctions:
    def write_module(self, folder: Path, name: str, source: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.py").write_text(source)

    async def test_a_function_is_imported_from_the_profile_python_path(
        self, write_profiles, tmp_path, progress, make_context
    ):
        module = f"steps_{tmp_path.name.replace('-', '_')}"
        source = "def run(context):\n    return {'step': context.step_id}\n"
        self.write_module(tmp_path / "config" / "mine", module, source)
        text = (
            "[profiles.py]\n"
            'runner = "python"\n'
            f'function = "{module}:run"\n'
            'python_path = ["./mine"]\n'
        )

        runner = ProfileRegistry.load(write_profiles(text)).runner_for("py", "docs")
        result = await runner.run(make_context(), progress)

        assert result.output == {"step": "build-api"}

    def test_a_module_that_cannot_be_imported_stops_the_start(self, write_profiles):
        text = '[profiles.py]\nrunner = "python"\nfunction = "no_such_module_x:run"\n'

        message = load_error(write_profiles(text))

        assert "profile 'py': cannot import 'no_such_module_x:run'" in message
        assert "ModuleNotFoundError" in message

    def test_a_name_that_is_not_callable_is_refused(self, write_profiles, tmp_path):
        module = f"values_{tmp_path.name.replace('-', '_')}"
        self.write_module(tmp_path / "config", module, "LIMIT = 3\n")
        text = (
            f'[profiles.py]\nrunner = "python"\nfunction = "{module}:LIMIT"\n'
            'python_path = ["."]\n'
        )

        message = load_error(write_profiles(text))

        assert f"'{module}:LIMIT' is not callable" in message


class TestRunnerCaps:
    def test_agents_share_the_profile_pool_unless_they_set_their_own(
        self, write_profiles
    ):
        registry = ProfileRegistry.load(write_profiles(MIXED))

        shared = registry.slots_for("mixed", "explore")
        assert shared is not None and shared.capacity == 2
        assert registry.slots_for("mixed", "docs") is shared
        own = registry.slots_for("mixed", "reviewer")
        assert own is not None and own is not shared and own.capacity == 1

    def test_an_agent_on_another_runner_does_not_take_the_profile_cap(
        self, write_profiles
    ):
        registry = ProfileRegistry.load(write_profiles(MIXED))

        assert registry.slots_for("mixed", "builder") is None
        assert registry.slots_for("simulated", "builder") is None

"""Runner profiles: which runner carries out each agent's steps.

An API caller picks a profile by name; what the profile runs is decided only by
the operator, in a TOML file named by ``PX_PROFILES_PATH``:

    [profiles.local-cli]
    description = "Runs my agent script for every step"
    runner = "command"                    # the runner of every agent by default
    command = ["python3", "./agents/agent.py", "--json"]
    env = { AGENT_MODE = "ci" }

    [profiles.local-cli.agents.docs]      # an override for one agent
    runner = "simulated"

A profile's keys are ``description``, ``runner`` (required), the options of the
runners it uses and ``agents``. An agent's table takes ``runner`` and options;
what it does not set comes from its profile, and its ``env`` adds to the
profile's. The runners and their options:

- ``simulated``: ``time_scale`` (a number from 0 to 100; by default the
  service's ``PX_SIMULATED_TIME_SCALE``) scales the sleep of each step;
- ``command``: ``command``, the program's argument list (required, never run
  through a shell; elements starting with ``./`` or ``../`` are resolved against
  the folder of the profiles file), and ``env``, a table of extra environment
  variables (strings).

The built-in profile ``simulated`` always exists and cannot be redefined. A file
that cannot be read or is not valid (an unknown key, runner or agent, a bad
command) stops the service from starting, with a message naming the file and the
profile or key at fault.
"""

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from app.errors import ProfileNotFound, ProfilesFileInvalid
from app.planning.models import Agent
from app.runners.base import Runner
from app.runners.command import CommandRunner
from app.runners.python import PythonRunner, StepFunction
from app.runners.simulated import SimulatedRunner
from app.settings import Settings

SIMULATED_PROFILE_NAME = "simulated"
RUNNER_OPTIONS: dict[str, tuple[str, ...]] = {
    "simulated": ("time_scale",),
    "command": ("command", "env"),
}

_OPTION_KEYS = {key for keys in RUNNER_OPTIONS.values() for key in keys}
_AGENT_KEYS = {"runner"} | _OPTION_KEYS
_PROFILE_KEYS = {"description", "agents"} | _AGENT_KEYS
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RELATIVE_PREFIXES = ("./", "../")
_MAX_TIME_SCALE = 100.0
_AGENTS = [agent.value for agent in Agent]


@dataclass(frozen=True)
class RunnerSpec:
    """Which runner to build, and with which options."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """A named choice of runner for every agent, with per-agent overrides."""

    name: str
    description: str
    default: RunnerSpec
    agents: dict[str, RunnerSpec] = field(default_factory=dict)

    def spec_for(self, agent: str) -> RunnerSpec:
        """The runner spec that carries out this agent's steps."""
        return self.agents.get(str(agent), self.default)


SIMULATED_PROFILE = Profile(
    name=SIMULATED_PROFILE_NAME,
    description="Simulates every step: waits for its estimate; no agent runs.",
    default=RunnerSpec("simulated"),
)


class ProfileRegistry:
    """The profiles the service offers, and the runners built from them."""

    def __init__(self, profiles: list[Profile], settings: Settings) -> None:
        self._profiles = {profile.name: profile for profile in profiles}
        self._settings = settings
        self._runners: dict[tuple[str, str], Runner] = {}

    @classmethod
    def load(cls, settings: Settings) -> "ProfileRegistry":
        """The built-in profile plus those of the operator's file, if one is set."""
        profiles = [SIMULATED_PROFILE]
        if settings.profiles_path is not None:
            profiles += _read_profiles_file(Path(settings.profiles_path))

        registry = cls(profiles, settings)
        if settings.default_profile not in registry.names():
            raise ProfilesFileInvalid(
                f"the default profile '{settings.default_profile}' is not defined; "
                f"known profiles: {', '.join(registry.names())}"
            )
        return registry

    def names(self) -> list[str]:
        """The profile names, the built-in one first."""
        return list(self._profiles)

    def get(self, name: str) -> Profile:
        """The profile of that name; ProfileNotFound when there is none."""
        profile = self._profiles.get(name)
        if profile is None:
            raise ProfileNotFound(
                f"unknown profile '{name}'", profile=name, known=self.names()
            )
        return profile

    def runner_for(self, profile_name: str, agent: str) -> Runner:
        """The runner of this agent's steps under that profile, built once."""
        profile = self.get(profile_name)
        agent = str(agent)
        key = (profile.name, agent if agent in profile.agents else "*")
        if key not in self._runners:
            self._runners[key] = _build_runner(profile.spec_for(agent), self._settings)
        return self._runners[key]

    def add_function(self, name: str, function: StepFunction) -> Profile:
        """A profile under which a Python function carries out every step.

        Only for in-process use (the Python API): the function lives in this
        process, so no other process can run an execution made with it.
        """
        if name in self._profiles:
            raise ValueError(f"a profile named '{name}' already exists")
        description = f"Calls {_qualified_name(function)} in this process."
        profile = Profile(name, description, RunnerSpec("python"))
        self._profiles[name] = profile
        self._runners[(name, "*")] = PythonRunner(function)
        return profile

    def describe(self) -> list[dict[str, Any]]:
        """Each profile's name, description and runner kinds, without its options."""
        return [
            {
                "name": profile.name,
                "description": profile.description,
                "default_runner": profile.default.kind,
                "runners": {
                    agent.value: profile.spec_for(agent).kind for agent in Agent
                },
            }
            for profile in self._profiles.values()
        ]


def _qualified_name(function: StepFunction) -> str:
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{name}" if module else name


def _build_runner(spec: RunnerSpec, settings: Settings) -> Runner:
    if spec.kind == "simulated":
        scale = spec.options.get("time_scale", settings.simulated_time_scale)
        return SimulatedRunner(time_scale=scale)
    return CommandRunner(
        spec.options["command"],
        workdir_root=settings.workdir_root,
        env=spec.options.get("env"),
        max_output_bytes=settings.max_output_bytes,
        max_log_line_bytes=settings.max_log_line_bytes,
        kill_grace_seconds=settings.kill_grace_seconds,
    )


def _read_profiles_file(path: Path) -> list[Profile]:
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError as exc:
        raise ProfilesFileInvalid(f"{path}: the profiles file does not exist") from exc
    except OSError as exc:
        raise ProfilesFileInvalid(
            f"{path}: cannot read the profiles file: {exc}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfilesFileInvalid(f"{path}: not valid TOML: {exc}") from exc

    return _ProfilesParser(path).parse(document)


class _ProfilesParser:
    """Turns a profiles document into profiles, naming the file in every error."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._folder = path.resolve().parent

    def parse(self, document: dict[str, Any]) -> list[Profile]:
        self._check_keys(document, {"profiles"}, "the file")
        tables = self._table(document.get("profiles", {}), "the file", "'profiles'")
        return [self._profile(name, table) for name, table in tables.items()]

    def _profile(self, name: str, table: Any) -> Profile:
        where = f"profile '{name}'"
        if name == SIMULATED_PROFILE_NAME:
            self._fail(where, "the built-in profile cannot be redefined")
        if not _PROFILE_NAME.match(name):
            self._fail(where, "a name takes letters, digits, '.', '_' and '-' (max 64)")
        table = self._table(table, where, "the profile")
        self._check_keys(table, _PROFILE_KEYS, where)

        description = table.get("description", "")
        if not isinstance(description, str):
            self._fail(where, "'description' must be a string")
        if "runner" not in table:
            self._fail(where, "'runner' is required")
        options = self._options(table, where)
        default = self._spec(table["runner"], options, where)
        agents = self._agents(table.get("agents", {}), table["runner"], options, where)
        return Profile(name, description, default, agents)

    def _agents(
        self, tables: Any, runner: Any, options: dict[str, Any], where: str
    ) -> dict[str, RunnerSpec]:
        tables = self._table(tables, where, "'agents'")
        specs = {}
        for agent, table in tables.items():
            agent_where = f"{where}, agent '{agent}'"
            if agent not in _AGENTS:
                known = ", ".join(_AGENTS)
                self._fail(agent_where, f"unknown agent (known agents: {known})")
            table = self._table(table, agent_where, "the agent")
            self._check_keys(table, _AGENT_KEYS, agent_where)

            merged = {**options, **self._options(table, agent_where)}
            if "env" in options and "env" in table:
                merged["env"] = {**options["env"], **merged["env"]}
            specs[agent] = self._spec(table.get("runner", runner), merged, agent_where)
        return specs

    def _spec(self, kind: Any, options: dict[str, Any], where: str) -> RunnerSpec:
        if kind not in RUNNER_OPTIONS:
            known = ", ".join(RUNNER_OPTIONS)
            self._fail(where, f"unknown runner {kind!r} (known runners: {known})")
        if kind == "command" and "command" not in options:
            self._fail(where, "runner 'command' needs a 'command'")
        kept = {
            key: value for key, value in options.items() if key in RUNNER_OPTIONS[kind]
        }
        return RunnerSpec(kind, kept)

    def _options(self, table: dict[str, Any], where: str) -> dict[str, Any]:
        options = {}
        if "command" in table:
            options["command"] = self._command(table["command"], where)
        if "env" in table:
            options["env"] = self._env(table["env"], where)
        if "time_scale" in table:
            options["time_scale"] = self._time_scale(table["time_scale"], where)
        return options

    def _command(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or not value:
            self._fail(where, "'command' must be a non-empty list of strings")
        if not all(isinstance(part, str) and part for part in value):
            self._fail(where, "'command' must be a non-empty list of strings")
        return [self._resolve(part) for part in value]

    def _env(self, value: Any, where: str) -> dict[str, str]:
        table = self._table(value, where, "'env'")
        for name, text in table.items():
            if not isinstance(text, str):
                self._fail(where, f"env '{name}' must be a string")
        return dict(table)

    def _time_scale(self, value: Any, where: str) -> float:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not 0 <= value <= _MAX_TIME_SCALE:
            self._fail(
                where, f"'time_scale' must be a number from 0 to {_MAX_TIME_SCALE:g}"
            )
        return float(value)

    def _resolve(self, part: str) -> str:
        """An argument relative to the profiles file's folder, made absolute."""
        if not part.startswith(_RELATIVE_PREFIXES):
            return part
        return os.path.normpath(self._folder / part)

    def _table(self, value: Any, where: str, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self._fail(where, f"{what} must be a table")
        return value

    def _check_keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                self._fail(
                    where,
                    f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})",
                )

    def _fail(self, where: str, problem: str) -> NoReturn:
        raise ProfilesFileInvalid(f"{self._path}: {where}: {problem}")

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
profile's. So one profile can route each agent to a runner of its own: explore
on a cheap model, builder on a coding-agent CLI, reviewer on another model.

The runners and their options (relative paths, ``./`` or ``../``, are resolved
against the folder of the profiles file):

- ``simulated``: ``time_scale`` (0 to 100; by default ``PX_SIMULATED_TIME_SCALE``);
- ``command``: ``command`` (required; the argument list, never run through a
  shell), ``env`` (extra environment variables) and ``result_format``
  (``parallel-exec`` or ``claude``);
- ``python``: ``function`` (required; ``module:callable``, imported when the
  file is loaded) and ``python_path`` (folders to import it from, relative ones
  taken from the file's folder);
- ``http``: ``url`` (required), ``headers`` and ``api_key_env``;
- ``openai``: ``base_url`` and ``model`` (required), ``api_key_env``,
  ``system_prompt``, ``parameters``, ``prices`` and ``stream``.

``http`` and ``openai`` also take ``request_timeout_seconds``, ``max_retries``,
``backoff_seconds``, ``max_backoff_seconds`` and ``max_retry_after_seconds``.
An API key is never in the file: ``api_key_env`` names the environment variable
that holds it. Any runner takes ``max_concurrent``, a cap on its runs at once
in this process across all executions: set on a profile, it is shared by the
agents that use the profile's runner and do not set their own; an agent that
sets its own has a pool of its own.

The built-in profile ``simulated`` always exists and cannot be redefined. A file
that cannot be read or is not valid (an unknown key, runner or agent, a bad
command) stops the service from starting, with a message naming the file and the
profile or key at fault.
"""

import importlib
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from app.errors import ProfileNotFound, ProfilesFileInvalid
from app.execution.limits import Slots
from app.planning.models import Agent
from app.runners.base import Runner
from app.runners.command import RESULT_FORMATS, CommandRunner
from app.runners.http import HttpRunner
from app.runners.openai import OpenAIRunner, Price
from app.runners.python import PythonRunner, StepFunction
from app.runners.simulated import SimulatedRunner
from app.runners.web import WebRetry
from app.settings import Settings

SIMULATED_PROFILE_NAME = "simulated"
_WEB_OPTIONS = (
    "api_key_env",
    "request_timeout_seconds",
    "max_retries",
    "backoff_seconds",
    "max_backoff_seconds",
    "max_retry_after_seconds",
)
RUNNER_OPTIONS: dict[str, tuple[str, ...]] = {
    "simulated": ("time_scale",),
    "command": ("command", "env", "result_format"),
    "python": ("function", "python_path"),
    "http": ("url", "headers", *_WEB_OPTIONS),
    "openai": (
        "base_url",
        "model",
        "system_prompt",
        "parameters",
        "prices",
        "stream",
        *_WEB_OPTIONS,
    ),
}
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {
    "command": ("command",),
    "python": ("function",),
    "http": ("url",),
    "openai": ("base_url", "model"),
}
# options the executor reads, not the runner
_LIMIT_OPTIONS = ("max_concurrent",)
# the request body's own keys: a profile's parameters cannot replace them
_RESERVED_PARAMETERS = {"model", "messages", "stream", "stream_options"}
_MAX_CONCURRENT = 1000

_OPTION_KEYS = {key for keys in RUNNER_OPTIONS.values() for key in keys}
_AGENT_KEYS = {"runner", *_LIMIT_OPTIONS} | _OPTION_KEYS
_PROFILE_KEYS = {"description", "agents"} | _AGENT_KEYS
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RELATIVE_PREFIXES = ("./", "../")
_MAX_TIME_SCALE = 100.0
_MAX_SECONDS = 7 * 24 * 3600
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# headers a web runner or HTTP itself sets: a profile cannot override them
_RUNNER_HEADERS = {
    "accept",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "expect",
    "host",
    "idempotency-key",
    "te",
    "transfer-encoding",
    "upgrade",
}
_FUNCTION_PROFILE_PREFIX = "python."
_AGENTS = [agent.value for agent in Agent]


@dataclass(frozen=True)
class RunnerSpec:
    """Which runner to build, with which options, and the cap on its runs at once.

    ``pool`` names the table that set ``max_concurrent``: ``*`` for the profile
    (shared by the agents that do not set their own), else the agent.
    """

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    max_concurrent: int | None = None
    pool: str = "*"


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
        self._pools: dict[tuple[str, str], Slots] = {}

    @classmethod
    def load(cls, settings: Settings) -> "ProfileRegistry":
        """The built-in profile plus those of the operator's file, if one is set."""
        profiles = [SIMULATED_PROFILE]
        if settings.profiles_path is not None:
            profiles += _read_profiles_file(Path(settings.profiles_path))

        registry = cls(profiles, settings)
        registry._build_all(settings.profiles_path)
        if settings.default_profile not in registry.names():
            raise ProfilesFileInvalid(
                f"the default profile '{settings.default_profile}' is not defined; "
                f"known profiles: {', '.join(registry.names())}"
            )
        return registry

    def _build_all(self, path: Path | None) -> None:
        """Build every runner now, so that one that cannot be built stops the start."""
        for profile in self._profiles.values():
            for agent in _AGENTS:
                try:
                    self.runner_for(profile.name, agent)
                except (ValueError, TypeError) as error:
                    raise ProfilesFileInvalid(
                        f"{path}: profile '{profile.name}', agent '{agent}': {error}"
                    ) from error

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

    def slots_for(self, profile_name: str, agent: str) -> Slots | None:
        """The cap on this agent's runner's runs at once, if the profile sets one."""
        spec = self.get(profile_name).spec_for(agent)
        if spec.max_concurrent is None:
            return None
        key = (profile_name, spec.pool)
        if key not in self._pools:
            self._pools[key] = Slots(spec.max_concurrent)
        return self._pools[key]

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
    options = spec.options
    bounds = {
        "max_output_bytes": settings.max_output_bytes,
        "max_log_line_bytes": settings.max_log_line_bytes,
    }
    if spec.kind == "simulated":
        scale = options.get("time_scale", settings.simulated_time_scale)
        return SimulatedRunner(time_scale=scale)
    if spec.kind == "python":
        return PythonRunner(options["function"])
    if spec.kind == "http":
        return HttpRunner(
            options["url"],
            headers=options.get("headers"),
            **_web_options(options),
            **bounds,
        )
    if spec.kind == "openai":
        return OpenAIRunner(
            options["base_url"],
            options["model"],
            system_prompt=options.get("system_prompt"),
            parameters=options.get("parameters"),
            prices=options.get("prices"),
            stream=options.get("stream", True),
            **_web_options(options),
            **bounds,
        )
    return CommandRunner(
        options["command"],
        workdir_root=settings.workdir_root,
        env=options.get("env"),
        result_format=options.get("result_format", "parallel-exec"),
        kill_grace_seconds=settings.kill_grace_seconds,
        **bounds,
    )


def _web_options(options: dict[str, Any]) -> dict[str, Any]:
    defaults = WebRetry()
    retry = WebRetry(
        max_retries=options.get("max_retries", defaults.max_retries),
        backoff_s=options.get("backoff_seconds", defaults.backoff_s),
        max_backoff_s=options.get("max_backoff_seconds", defaults.max_backoff_s),
        max_retry_after_s=options.get(
            "max_retry_after_seconds", defaults.max_retry_after_s
        ),
    )
    web = {"api_key_env": options.get("api_key_env"), "retry": retry}
    if "request_timeout_seconds" in options:
        web["request_timeout_s"] = options["request_timeout_seconds"]
    return web


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
        if name.startswith(_FUNCTION_PROFILE_PREFIX):
            self._fail(
                where, "names starting 'python.' are kept for in-process functions"
            )
        table = self._table(table, where, "the profile")
        self._check_keys(table, _PROFILE_KEYS, where)

        description = table.get("description", "")
        if not isinstance(description, str):
            self._fail(where, "'description' must be a string")
        if "runner" not in table:
            self._fail(where, "'runner' is required")
        options = self._options(table, where)
        default = self._spec(table["runner"], options, where)
        agents = self._agents(table.get("agents", {}), table, options, where)
        kinds = {default.kind} | {spec.kind for spec in agents.values()}
        self._check_fit(options, kinds, where)
        return Profile(name, description, default, agents)

    def _check_fit(self, options: dict[str, Any], kinds: set[str], where: str) -> None:
        """Refuse an option that none of these runners takes: it would do nothing."""
        for key in options:
            if key in _LIMIT_OPTIONS or any(key in RUNNER_OPTIONS[k] for k in kinds):
                continue
            runners = " or ".join(f"'{kind}'" for kind in sorted(kinds))
            self._fail(where, f"'{key}' is not an option of runner {runners}")

    def _agents(
        self, tables: Any, profile: dict[str, Any], options: dict[str, Any], where: str
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

            own = self._options(table, agent_where)
            merged = {**options, **own}
            for key in ("env", "headers"):
                if key in options and key in own:
                    merged[key] = {**options[key], **own[key]}
            runner = table.get("runner", profile["runner"])
            if runner in RUNNER_OPTIONS:
                self._check_fit(own, {runner}, agent_where)
            pool = agent if "max_concurrent" in own else "*"
            if runner != profile["runner"] and "max_concurrent" not in own:
                merged.pop("max_concurrent", None)  # the profile's cap is its runner's
            specs[agent] = self._spec(runner, merged, agent_where, pool)
        return specs

    def _spec(
        self, kind: Any, options: dict[str, Any], where: str, pool: str = "*"
    ) -> RunnerSpec:
        if kind not in RUNNER_OPTIONS:
            known = ", ".join(RUNNER_OPTIONS)
            self._fail(where, f"unknown runner {kind!r} (known runners: {known})")
        for required in REQUIRED_OPTIONS.get(kind, ()):
            if required not in options:
                self._fail(where, f"runner '{kind}' needs a '{required}'")
        kept = {
            key: value for key, value in options.items() if key in RUNNER_OPTIONS[kind]
        }
        if kind == "python":
            kept["function"] = self._import(kept, where)
            kept.pop("python_path", None)
        return RunnerSpec(kind, kept, options.get("max_concurrent"), pool)

    def _options(self, table: dict[str, Any], where: str) -> dict[str, Any]:
        parsers = {
            "command": self._command,
            "env": self._strings,
            "result_format": self._result_format,
            "time_scale": self._time_scale,
            "function": self._function,
            "python_path": self._folders,
            "url": self._url,
            "base_url": self._url,
            "headers": self._headers,
            "api_key_env": self._variable_name,
            "model": self._text,
            "system_prompt": self._text,
            "parameters": self._parameters,
            "prices": self._prices,
            "stream": self._flag,
            "request_timeout_seconds": self._positive_seconds,
            "max_retries": self._count,
            "backoff_seconds": self._seconds,
            "max_backoff_seconds": self._seconds,
            "max_retry_after_seconds": self._seconds,
            "max_concurrent": self._max_concurrent,
        }
        return {
            key: parsers[key](table[key], f"{where}: '{key}'")
            for key in parsers
            if key in table
        }

    def _command(self, value: Any, what: str) -> list[str]:
        if not isinstance(value, list) or not value:
            self._wrong(what, "must be a non-empty list of strings")
        if not all(isinstance(part, str) and part for part in value):
            self._wrong(what, "must be a non-empty list of strings")
        return [self._resolve(part) for part in value]

    def _strings(self, value: Any, what: str) -> dict[str, str]:
        if not isinstance(value, dict):
            self._wrong(what, "must be a table")
        for name, text in value.items():
            if not isinstance(text, str):
                self._wrong(what, f"values must be strings ('{name}' is not)")
        return dict(value)

    def _headers(self, value: Any, what: str) -> dict[str, str]:
        headers = self._strings(value, what)
        for name, text in headers.items():
            if not _HEADER_NAME.match(name):
                self._wrong(what, f"'{name}' is not a header name")
            if name.lower() in _RUNNER_HEADERS:
                self._wrong(what, f"cannot set {name}: the runner sets it")
            if not text.isprintable():
                self._wrong(what, f"'{name}' holds a line break or control character")
        return headers

    def _result_format(self, value: Any, what: str) -> str:
        if value not in RESULT_FORMATS:
            self._wrong(what, f"must be one of: {', '.join(RESULT_FORMATS)}")
        return value

    def _time_scale(self, value: Any, what: str) -> float:
        if not _is_number(value) or not 0 <= value <= _MAX_TIME_SCALE:
            self._wrong(what, f"must be a number from 0 to {_MAX_TIME_SCALE:g}")
        return float(value)

    def _function(self, value: Any, what: str) -> str:
        module, _, name = (
            value.partition(":") if isinstance(value, str) else ("", "", "")
        )
        if not module or not name:
            self._wrong(what, "must be 'module:callable', e.g. 'agents.steps:run'")
        return value

    def _folders(self, value: Any, what: str) -> list[str]:
        if not isinstance(value, list) or not all(
            isinstance(part, str) and part for part in value
        ):
            self._wrong(what, "must be a list of folders")
        # unlike command arguments, every relative folder is the file's
        return [os.path.normpath(self._folder / part) for part in value]

    def _url(self, value: Any, what: str) -> str:
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            self._wrong(what, "must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            self._wrong(what, "must not hold a user or password: use api_key_env")
        return value

    def _variable_name(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not _VARIABLE_NAME.match(value):
            self._wrong(
                what, "must name an environment variable, e.g. 'OPENAI_API_KEY'"
            )
        return value

    def _text(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self._wrong(what, "must be a non-empty string")
        return value

    def _parameters(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self._wrong(what, "must be a table")
        reserved = sorted(_RESERVED_PARAMETERS & set(value))
        if reserved:
            self._wrong(what, f"cannot set {', '.join(reserved)}: the runner does")
        return dict(value)

    def _prices(self, value: Any, what: str) -> dict[str, Price]:
        if not isinstance(value, dict):
            self._wrong(what, "must be a table of models")
        prices = {}
        for model, price in value.items():
            keys = {"input_per_million", "output_per_million"}
            if not isinstance(price, dict) or set(price) != keys:
                self._wrong(what, f"'{model}' takes {' and '.join(sorted(keys))}")
            if not all(_is_number(n) and n >= 0 for n in price.values()):
                self._wrong(what, f"'{model}' prices must be numbers of at least 0")
            prices[model] = Price(**{key: float(n) for key, n in price.items()})
        return prices

    def _flag(self, value: Any, what: str) -> bool:
        if not isinstance(value, bool):
            self._wrong(what, "must be true or false")
        return value

    def _seconds(self, value: Any, what: str) -> float:
        if not _is_number(value) or not 0 <= value <= _MAX_SECONDS:
            self._wrong(what, f"must be a number of seconds from 0 to {_MAX_SECONDS}")
        return float(value)

    def _positive_seconds(self, value: Any, what: str) -> float:
        if not _is_number(value) or not 0 < value <= _MAX_SECONDS:
            self._wrong(
                what, f"must be a number of seconds above 0, at most {_MAX_SECONDS}"
            )
        return float(value)

    def _count(self, value: Any, what: str) -> int:
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= 20
        ):
            self._wrong(what, "must be a whole number from 0 to 20")
        return value

    def _max_concurrent(self, value: Any, what: str) -> int:
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if not is_int or not 1 <= value <= _MAX_CONCURRENT:
            self._wrong(what, f"must be a whole number from 1 to {_MAX_CONCURRENT}")
        return value

    def _import(self, options: dict[str, Any], where: str) -> StepFunction:
        """The profile's function, imported now so that a bad path stops the start."""
        module_name, _, name = options["function"].partition(":")
        for folder in reversed(options.get("python_path", [])):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        try:
            target: Any = importlib.import_module(module_name)
            for part in name.split("."):
                target = getattr(target, part)
        except Exception as exc:  # an operator's module may raise anything
            self._fail(
                where,
                f"cannot import '{options['function']}': {type(exc).__name__}: {exc}",
            )
        if not callable(target):
            self._fail(where, f"'{options['function']}' is not callable")
        return target

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

    def _wrong(self, what: str, problem: str) -> NoReturn:
        raise ProfilesFileInvalid(f"{self._path}: {what} {problem}")

    def _fail(self, where: str, problem: str) -> NoReturn:
        raise ProfilesFileInvalid(f"{self._path}: {where}: {problem}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

"""Typed settings for the service, read from the environment with the prefix PX_."""

import ipaddress
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PX_", env_file=".env", extra="ignore")

    # server
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_key: str | None = Field(
        default=None, description="When set, every request must send it as X-API-Key."
    )
    log_level: str = "INFO"

    # storage
    database_url: str = "sqlite+aiosqlite:///./data/parallel-exec.db"
    database_echo: bool = False
    # PostgreSQL ends a transaction left open this long (a frozen process's), so
    # that its row locks cannot block the take-over of its executions
    database_idle_transaction_seconds: float = Field(default=10.0, gt=0)

    # runners
    profiles_path: Path | None = Field(
        default=None, description="TOML file with the operator's agent profiles."
    )
    default_profile: str = "simulated"
    simulated_time_scale: float = Field(default=1.0, ge=0.0, le=100.0)
    workdir_root: Path = Path("./data/runs")
    max_output_bytes: int = Field(default=256 * 1024, ge=1024)
    max_log_line_bytes: int = Field(default=4096, ge=64)
    max_log_events_per_run: int = Field(default=1000, ge=1)
    max_state_updates_per_run: int = Field(default=200, ge=1)
    kill_grace_seconds: float = Field(default=2.0, ge=0.0)

    # limits
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_task_chars: int = Field(default=10_000, ge=10)
    max_plan_steps: int = Field(default=500, ge=1)
    max_parallel_default: int = Field(default=4, ge=1)
    max_parallel_limit: int = Field(default=64, ge=1)
    server_max_parallel: int = Field(default=32, ge=1)
    step_timeout_default_seconds: float = Field(default=600.0, gt=0)
    step_timeout_max_seconds: float = Field(default=24 * 3600.0, gt=0)
    execution_timeout_default_seconds: float = Field(default=3600.0, gt=0)
    execution_timeout_max_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    cancel_wait_seconds: float = Field(default=10.0, ge=0)
    page_size_default: int = Field(default=50, ge=1)
    page_size_max: int = Field(default=500, ge=1)
    retry_max_attempts_limit: int = Field(default=10, ge=1)
    idempotency_key_ttl_seconds: float = Field(default=24 * 3600.0, gt=0)
    idempotency_key_max_chars: int = Field(default=200, ge=8, le=200)

    # recovery and several processes
    lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="An execution whose owner has not renewed it for this long "
        "is taken over by another process.",
    )
    heartbeat_seconds: float = Field(
        default=3.0,
        gt=0,
        description="How often a process renews its leases, looks for executions "
        "to take over and for cancels asked of another process.",
    )
    shutdown_grace_seconds: float = Field(
        default=15.0,
        ge=0,
        description="On SIGTERM, how long running steps may go on before they "
        "are interrupted and left for the next start to resume.",
    )
    stream_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A WebSocket stream re-reads the table at least this often.",
    )
    stream_batch_events: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="The most events in one message of a stream with batch=true.",
    )
    stream_batch_bytes: int = Field(
        default=512 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description=(
            "The most bytes in one message of a stream with batch=true, unless "
            "one event alone is larger: under the 1 MiB most clients take."
        ),
    )
    live_buffer_events: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description=(
            "Live events held for one watcher that is behind; past this, its "
            "oldest are dropped and read back from the table."
        ),
    )

    @model_validator(mode="after")
    def refuse_unsafe_combinations(self) -> "Settings":
        if not _is_loopback(self.host) and not self.api_key:
            raise ValueError(
                f"PX_HOST={self.host} listens beyond this machine; set PX_API_KEY too"
            )
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"PX_HEARTBEAT_SECONDS={self.heartbeat_seconds:g} must be at most "
                f"half of PX_LEASE_SECONDS={self.lease_seconds:g}, so that a lease "
                "is renewed before it runs out"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()

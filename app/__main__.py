"""Start the service: python -m app."""

import sys

import uvicorn
from pydantic import ValidationError

from app.errors import DatabaseInUse, ProfilesFileInvalid
from app.main import create_app
from app.runners.profiles import ProfileRegistry
from app.settings import Settings, get_settings
from app.storage.database import SqliteFileLock

USAGE = """usage: scripts/run  (or: python -m app)

Starts the parallel-exec service. It takes no arguments: every setting is an
environment variable with the prefix PX_ (PX_PORT, PX_DATABASE_URL,
PX_PROFILES_PATH, ...), listed in README.md under Configuration.
"""


def main() -> None:
    if sys.argv[1:]:
        wanted_help = sys.argv[1] in ("-h", "--help")
        print(USAGE, end="", file=sys.stdout if wanted_help else sys.stderr)
        sys.exit(0 if wanted_help else 2)
    settings = _checked_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.cancel_wait_seconds) + 5,
    )


def _checked_settings() -> Settings:
    """The settings, or a one-line reason on stderr and exit code 2."""
    try:
        settings = get_settings()
        ProfileRegistry.load(settings)
    except ValidationError as error:
        problems = "; ".join(
            f"PX_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in error.errors()
        )
        sys.exit(f"parallel-exec: invalid settings: {problems}")
    except ProfilesFileInvalid as error:
        sys.exit(f"parallel-exec: {error}")
    if settings.is_sqlite:
        lock = SqliteFileLock(settings.database_url)
        try:
            lock.acquire()  # checked here for a clear message; held in the app
        except DatabaseInUse as error:
            sys.exit(f"parallel-exec: {error}")
        lock.release()
    return settings


if __name__ == "__main__":
    main()

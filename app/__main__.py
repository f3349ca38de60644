"""Start the service: python -m app."""

import asyncio
import socket
import sys

import uvicorn
from pydantic import ValidationError
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

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
    listening = _listen(settings.host, settings.port)
    _check_database_free(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.cancel_wait_seconds) + 5,
    )
    uvicorn.Server(config).run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the app starts.

    Bound first, so that a process that cannot listen (the port is taken) stops
    before it takes over any execution.
    """
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        listening = socket.socket(family, kind, protocol)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError as error:
        sys.exit(f"parallel-exec: cannot listen on {host}:{port}: {error.strerror}")
    listening.set_inheritable(True)
    return listening


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
    return settings


def _check_database_free(settings: Settings) -> None:
    """Stop with one line if the database cannot be opened or is in use."""
    if settings.is_sqlite:
        lock = SqliteFileLock(settings.database_url)
        try:
            lock.acquire()  # checked here for a clear message; held in the app
        except DatabaseInUse as error:
            sys.exit(f"parallel-exec: {error}")
        lock.release()
    try:
        asyncio.run(_connect_once(settings.database_url))
    except (OSError, SQLAlchemyError) as error:
        url = _shown_url(settings.database_url)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        sys.exit(f"parallel-exec: cannot open the database {url}: {reason}")


def _shown_url(url: str) -> str:
    """The URL with its password hidden, or as given when it does not parse."""
    try:
        return make_url(url).render_as_string()
    except SQLAlchemyError:
        return url


async def _connect_once(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect():
            pass
    finally:
        await engine.dispose()


if __name__ == "__main__":
    main()

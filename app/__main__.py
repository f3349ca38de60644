"""Start the service: python -m app."""

import uvicorn

from app.main import create_app
from app.settings import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.cancel_wait_seconds) + 5,
    )


if __name__ == "__main__":
    main()

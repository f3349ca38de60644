"""The OpenAPI contract as committed in openapi/openapi.json."""

import json
import sys
from typing import Any

from app.main import create_app
from app.settings import Settings


def openapi() -> dict[str, Any]:
    return create_app(Settings(_env_file=None)).openapi()


def rendered() -> str:
    return json.dumps(openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(rendered())

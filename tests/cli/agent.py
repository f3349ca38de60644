"""The CLI tests' agent: it fails at once, or waits until a gate file exists.

CLI_TEST_EXIT set: print a line to stderr and exit with that code. CLI_TEST_USAGE
set: succeed at once, reporting 400 input and 100 output tokens costing 0.5. Otherwise
leave a file named by its pid in CLI_TEST_RUNNING while it waits for the file
CLI_TEST_GATE to appear, then succeed; after PATIENCE_SECONDS it gives up and
fails, so that no agent outlives a test that went wrong.
"""

import json
import os
import sys
import time
from pathlib import Path

PATIENCE_SECONDS = 120.0


def main() -> int:
    if "CLI_TEST_EXIT" in os.environ:
        print("the build broke", file=sys.stderr)
        return int(os.environ["CLI_TEST_EXIT"])
    if "CLI_TEST_USAGE" in os.environ:
        usage = {"input_tokens": 400, "output_tokens": 100, "cost": 0.5}
        print(json.dumps({"output": "done", "usage": usage}))
        return 0

    marker = Path(os.environ["CLI_TEST_RUNNING"]) / str(os.getpid())
    marker.touch()
    gate = Path(os.environ["CLI_TEST_GATE"])
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    marker.unlink()
    return 0 if gate.exists() else 1


if __name__ == "__main__":
    sys.exit(main())

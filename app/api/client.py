"""Generate the httpx client in openapi/client from the committed spec.

``python -m app.api.client OUT`` runs openapi-python-client (the version pinned
in pyproject.toml) on openapi/openapi.json and writes the client package to OUT,
replacing what was there. The drift test generates into a temporary folder and
compares it with the committed copy, file by file.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi" / "openapi.json"
CONFIG = ROOT / "openapi" / "client-config.yaml"
# caches, and what an editable install of the client writes beside it
SKIPPED = (".ruff_cache", "__pycache__", "*.egg-info", ".pdm-build")


def generate(out: Path) -> None:
    """Write the client generated from the committed spec to ``out``."""
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "client"
        # the generator formats its output with ruff, found on PATH
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
        subprocess.run(
            [
                str(Path(bin_dir) / "openapi-python-client"),
                "generate",
                "--path",
                str(SPEC),
                "--config",
                str(CONFIG),
                "--meta",
                "pdm",
                "--output-path",
                str(target),
                "--fail-on-warning",
            ],
            check=True,
            env=env,
            cwd=scratch,
            stdout=subprocess.DEVNULL,
        )
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(target, out, ignore=shutil.ignore_patterns(*SKIPPED))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path, caches left out."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not _skipped(path.relative_to(root))
    }


def _skipped(relative: Path) -> bool:
    return any(
        part in (".ruff_cache", "__pycache__", ".pdm-build")
        or part.endswith(".egg-info")
        for part in relative.parts
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m app.api.client OUT_FOLDER")
    generate(Path(sys.argv[1]))

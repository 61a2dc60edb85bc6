"""Print the requirements of the named extras of ../pyproject.toml, one a line (base ones with `server`).

The images install dependencies from this list before copying the source, so a code change
reuses the cached dependency layers; only a pyproject.toml change reinstalls them.

    python requirements.py server   # project dependencies + the server extra
    python requirements.py models   # the models extra only
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project["optional-dependencies"]
    unknown = [extra for extra in extras if extra not in optional]
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}")
    base = project["dependencies"] if "server" in extras else []
    return [*base, *(req for extra in extras for req in optional[extra])]


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    pyproject = here / "pyproject.toml" if (here / "pyproject.toml").exists() else here.parent / "pyproject.toml"
    print("\n".join(requirements(pyproject, sys.argv[1:])))

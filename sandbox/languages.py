"""The languages the sandbox runs and how: Python in the warm interpreter, C/C++ compiled once then exec'd."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from sandbox.settings import SandboxSettings


@dataclass(frozen=True)
class Compiled:
    """A compiled language: the compiler's argv (run inside the sandbox) and its file names."""

    source_name: str
    binary_name: str
    argv: tuple[str, ...]

    @property
    def compiler(self) -> str:
        return self.argv[0]

    @property
    def flags_key(self) -> str:
        """Part of the compiled-binary cache key: a change of compiler or flags is a new binary."""
        return "\0".join(self.argv)


def _resolve(program: str) -> str:
    path = shutil.which(program) or program
    return os.path.realpath(path)


def compiled_languages(settings: SandboxSettings) -> dict[str, Compiled]:
    """C++17 and C11 with the configured compilers, absolute paths so no PATH lookup happens inside."""
    gxx, gcc = _resolve(settings.gxx), _resolve(settings.gcc)
    return {
        "cpp": Compiled("main.cpp", "main", (gxx, "-std=c++17", "-O2", "-pipe", "-o", "main", "main.cpp", "-lm")),
        "c": Compiled("main.c", "main", (gcc, "-std=c11", "-O2", "-pipe", "-o", "main", "main.c", "-lm")),
    }

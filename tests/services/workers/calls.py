"""Functions the pool tests run in worker processes (importable by name)."""

from __future__ import annotations

import os


def add(a: int, b: int) -> int:
    return a + b


def spin() -> None:
    while True:
        pass


def die() -> None:
    os._exit(9)


def pid() -> int:
    return os.getpid()


def unpicklable() -> object:
    return lambda: None

"""The layer's per-process caches, reset together.

A warm Lambda container keeps clients, settings, tokens and budgets between invocations
in module-level caches. A process that runs one deployment after another (the local stack,
a test that starts a new AWS mock) must drop them all: each module that keeps such a cache
registers its reset here, and `reset_all()` runs every reset registered so far (a module
not imported yet holds nothing to forget).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Reset = TypeVar("Reset", bound=Callable[[], object])

_resets: list[Callable[[], object]] = []


def register(reset: Reset) -> Reset:
    """Run `reset` (called without arguments) on `reset_all()`; returns it, so it also serves
    as a decorator. Registering the same function twice keeps one entry."""
    if reset not in _resets:
        _resets.append(reset)
    return reset


def reset_all() -> None:
    """Run every registered reset, in the order they were registered."""
    for reset in list(_resets):
        reset()

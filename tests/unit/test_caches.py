"""The layer's cache registry and its one clock."""

from __future__ import annotations

import pytest

from whoop_bridge import caches
from whoop_bridge import clock as clock_module
from whoop_bridge.config import settings


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(caches, "_resets", [])
    return caches


def test_register_returns_the_function_keeps_one_entry_and_reset_all_runs_them_in_order(registry):
    ran = []

    @registry.register
    def first() -> None:
        ran.append("first")

    def second() -> None:
        ran.append("second")

    assert registry.register(second) is second
    registry.register(first)
    registry.reset_all()
    assert ran == ["first", "second"]


def test_reset_all_drops_the_settings_and_puts_the_wall_clock_back(monkeypatch):
    class Stopped:
        def time(self) -> float:
            return 1.0

        def sleep(self, seconds: float) -> None:
            return None

        def real_seconds(self, seconds: float) -> float:
            return seconds

    monkeypatch.setenv("ENVIRONMENT", "sandbox")
    before = settings()
    clock_module.use_clock(Stopped())
    assert clock_module.clock().time() == 1.0

    caches.reset_all()

    assert settings() is not before
    assert isinstance(clock_module.clock(), clock_module.SystemClock)


def test_the_budget_counts_on_the_layer_clock():
    from whoop_bridge.whoop import budget

    clock_module.use_clock(None)
    budget.use_clock(clock_module.SystemClock())
    try:
        assert budget.clock() is clock_module.clock()
    finally:
        caches.reset_all()

"""Fixtures of the integration tests: one local stack per module (see integration_harness)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from integration_harness import SERVICES, Bridge, start_bridge


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    stack, emulator = start_bridge()
    try:
        yield Bridge(stack, emulator)
    finally:
        stack.stop()
        emulator.stop()


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """A fault a test injected never leaks into the next test."""
    yield
    if "bridge" in request.fixturenames:
        request.getfixturevalue("bridge").emulator.clear_faults()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the functions log (the handlers' and the layer's) while the test runs.

    Powertools binds each logger's handler to the stdout of its first creation, so the
    stream is swapped on the handlers themselves.
    """
    buffer = io.StringIO()
    swapped: list[tuple[logging.StreamHandler, Any]] = []
    for name in ("whoop_bridge", *SERVICES):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and all(handler is not done for done, _ in swapped):
                swapped.append((handler, handler.setStream(buffer)))
    try:
        yield buffer
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)

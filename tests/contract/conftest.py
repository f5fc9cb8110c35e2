"""Shared setup of the WHOOP contract tests: an emulator and a plain HTTP session."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from member_consent import REDIRECT

from local.emulator import WhoopEmulator


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # openapi-core does not check OAuth 2 security requirements (it warns on each call); the
    # bearer token is the emulator's check and the prose rules' (README table).
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning"))


@pytest.fixture
def emulator():
    with WhoopEmulator(redirect_uris=[REDIRECT]) as emu:
        yield emu


@pytest.fixture
def http():
    with requests.Session() as session:
        session.trust_env = False  # never route loopback calls through a proxy from the environment
        yield session

"""Shared fixtures: where the development data lives (../shared/data next to the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PYNAS_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"test data not found at {SHARED_DATA}; set PYNAS_TEST_DATA to shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ptb_dir(shared_data: Path) -> Path:
    return shared_data / "ptb"


@pytest.fixture(scope="session")
def cifar10_dir(shared_data: Path) -> Path:
    return shared_data / "cifar10"

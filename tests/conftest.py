"""Shared fixtures: where the development data lives (../shared/data next to the checkout;
PTB falls back to the copy shipped inside pynas, so PTB tests run on a fresh clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PYNAS_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"test data not found at {SHARED_DATA}; set PYNAS_TEST_DATA to shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ptb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PTB text files: the development copy if there is one, else the copy shipped in pynas
    (decompressed once per session for the tests that read the files themselves)."""
    if (SHARED_DATA / "ptb").is_dir():
        return SHARED_DATA / "ptb"
    import hashlib
    import lzma

    from pynas.data import PTB_DIR
    from pynas.tasks.ptb_data import PACKAGED_SHA256

    out = tmp_path_factory.mktemp("data") / "ptb"  # named like the task: PYNAS_DATA=parent works
    out.mkdir()
    for name, digest in PACKAGED_SHA256.items():
        text = lzma.decompress((PTB_DIR / f"{name}.xz").read_bytes())
        assert hashlib.sha256(text).hexdigest() == digest, f"packaged {name} is damaged"
        (out / name).write_bytes(text)
    return out


@pytest.fixture(scope="session")
def cifar10_dir(shared_data: Path) -> Path:
    return shared_data / "cifar10"


@pytest.fixture
def one_thread():
    """Small ops on shared cores run far faster on one torch thread; restored afterwards.
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def run_cli(capsys):
    """``run_cli(main, argv) -> (exit code, stdout, stderr)`` for a command's ``main``."""

    def run(main, argv):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run

"""Shared fixtures: where the development data lives (../shared/data next to the checkout;
PTB falls back to the copy shipped inside pynas, so PTB tests run on a fresh clone); one torch
thread; running a CLI; and, for fault tests, SIGKILLing chosen descendant processes (`killer`)."""

from __future__ import annotations

import os
import signal
import threading
import time
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

    from pynas.tasks.ptb.corpus import PACKAGED_SHA256, PTB_DIR

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


# ----- fault tests: find this test's descendant processes and SIGKILL chosen ones -------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(comm, ppid) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    return comm, int(text[text.rindex(")") + 2 :].split()[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                parents[int(entry)] = stat[1]
    out, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        out += sorted(frontier)
    return out


class Killer(threading.Thread):
    """SIGKILL descendants of `root` whose ``comm`` (or cmdline prefix) matches a planned name.

    ``plan`` maps a name to how many distinct processes of that name to kill: ``pynas-c5``
    is the process training child 5; ``cmd:ray::Replica`` matches a command line prefix;
    ``NAME@pynas-c7`` kills NAME only while a process named ``pynas-c7`` exists.
    """

    def __init__(self, root: int, plan: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.plan = dict(plan)
        self.killed: dict[str, list[int]] = {name: [] for name in plan}
        self._halt = threading.Event()

    def _matches(self, name: str, pid: int, running: set[str]) -> bool:
        name, _, trigger = name.partition("@")
        if trigger and trigger not in running:
            return False
        if name.startswith("cmd:"):
            return cmdline(pid).startswith(name[4:])
        stat = _stat(pid)
        return stat is not None and stat[0] == name

    def run(self) -> None:
        while not self._halt.is_set() and any(self.plan.values()):
            pids = descendants(self.root)
            running = {stat[0] for stat in map(_stat, pids) if stat is not None}
            for pid in pids:
                for name, left in self.plan.items():
                    if left and pid not in self.killed[name] and self._matches(name, pid, running):
                        os.kill(pid, signal.SIGKILL)
                        self.killed[name].append(pid)
                        self.plan[name] -= 1
            time.sleep(0.02)

    def stop(self) -> dict[str, list[int]]:
        self._halt.set()
        self.join(timeout=10)
        return self.killed


@pytest.fixture
def killer():
    started: list[Killer] = []

    def start(plan: dict[str, int], root: int | None = None) -> Killer:
        k = Killer(os.getpid() if root is None else root, plan)
        k.start()
        started.append(k)
        return k

    yield start
    for k in started:
        k.stop()

"""Helpers for fault tests: find this test's descendant processes and SIGKILL chosen ones."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest


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

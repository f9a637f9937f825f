"""``--workers N``: children in N local worker processes that survive each other's deaths.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies. This pool
keeps one pipe per worker, so it knows which item a dead worker was running: that item is
re-run on a fresh worker up to ``retries`` more times, then reported through the function's
``failed(item, reason, attempts)`` hook (:class:`pynas.executors.base.Retries`, see
:class:`pynas.executors.child.ChildEvaluator`).
Workers are started with the ``spawn`` method (no forked torch state), run torch with
``threads`` threads each, persist across ``map`` calls, and are killed by the kernel when the
process that owns the pool dies.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from pynas.executors.base import Retries, WorkerError, death_reason
from pynas.executors.worker import worker_main

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process (spawn context)
    conn: Connection


class WorkerPool:
    """``map(fn, items)`` over `workers` local processes; results arrive as they finish."""

    def __init__(self, workers: int, retries: int = 2, threads: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.workers = workers
        self.retries = retries
        self.threads = threads
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Worker | None] = [None] * workers

    # ----- workers ----------------------------------------------------------------------------
    def _start(self, slot: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=worker_main,
            args=(child, os.getpid(), self.threads),
            name=f"pynas-worker-{slot}",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._slots[slot] = worker
        return worker

    def _discard(self, slot: int) -> None:
        worker = self._slots[slot]
        self._slots[slot] = None
        if worker is None:
            return
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=10)
        worker.conn.close()

    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [w.process.pid for w in self._slots if w is not None and w.process.is_alive()]

    def _send(self, slot: int, message: Any) -> None:
        worker = self._slots[slot] or self._start(slot)
        try:
            worker.conn.send(message)
        except (BrokenPipeError, OSError):  # died while idle: a fresh worker takes the item
            self._discard(slot)
            self._start(slot).conn.send(message)

    def _receive(self, slot: int) -> tuple[str, Any]:
        """("ok", result) | ("error", traceback) | ("died", reason) for the slot's worker."""
        worker = self._slots[slot]
        assert worker is not None
        if worker.conn.poll():
            try:
                kind, _, payload = worker.conn.recv()
                return kind, payload
            except Exception:  # EOF or a message torn by the death
                pass
        worker.process.join(timeout=10)
        reason = death_reason(worker.process.exitcode)
        self._discard(slot)
        return "died", reason

    # ----- map --------------------------------------------------------------------------------
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        queue: deque[tuple[int, T, int]] = deque((i, x, 0) for i, x in enumerate(items))
        busy: dict[int, tuple[int, T, int]] = {}  # slot -> (task id, item, attempts so far)
        retries = Retries(fn, self.retries)
        try:
            while queue or busy:
                for slot in range(self.workers):
                    if slot not in busy and queue:
                        task_id, item, attempts = queue.popleft()
                        self._send(slot, (task_id, fn, item))
                        busy[slot] = (task_id, item, attempts + 1)
                owner: dict[Any, int] = {}
                for slot in busy:
                    worker = self._slots[slot]
                    assert worker is not None
                    owner[worker.conn] = slot
                    owner[worker.process.sentinel] = slot
                done: set[int] = set()
                for ready in wait(list(owner)):
                    slot = owner[ready]
                    if slot in done:
                        continue
                    done.add(slot)
                    task_id, item, attempts = busy.pop(slot)
                    kind, payload = self._receive(slot)
                    if kind == "ok":
                        yield retries.result(payload, attempts)
                    elif kind == "error":
                        raise WorkerError(f"item {task_id} raised in its worker:\n{payload}")
                    elif retries.again(attempts):
                        queue.appendleft((task_id, item, attempts))
                    else:
                        yield retries.died_every_time(item, payload, attempts, label=task_id)
        finally:
            for slot in busy:  # abandoned mid-item (caller stopped early, or an error)
                self._discard(slot)

    def close(self) -> None:
        """Ask idle workers to exit; kill any that do not within a few seconds."""
        for slot, worker in enumerate(self._slots):
            if worker is None:
                continue
            try:
                worker.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            worker.process.join(timeout=5)
            self._discard(slot)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

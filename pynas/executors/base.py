"""Where children are evaluated. The search only calls ``executor.map(fn, items)``.

Also the one rule for an item whose worker died (:class:`Retries`), used by the local worker
pool and by Ray tasks, and the one way to say why a worker died (:func:`death_reason`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn`` over ``items``; yields results as they finish (possibly out of order).

    Callers that need to match results to items put an identifier in each item and return it
    with the result. ``workers`` is how many evaluations run at once.
    """

    workers: int

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...


class InProcessExecutor:
    """Evaluates one item at a time in this process, in order (the default)."""

    workers = 1

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)

    def close(self) -> None:
        pass


class WorkerError(RuntimeError):
    """The function raised in a worker, or a worker died and the function has no failed hook."""


def death_reason(cause: int | None | BaseException, who: str = "worker process") -> str:
    """Why `who` died, in words: from its exit code (a negative one is the signal that killed
    it) or from the exception that reported the death (its type and first line)."""
    if isinstance(cause, BaseException):
        text = str(cause).strip().splitlines()
        detail = f": {text[0][:200]}" if text else ""
        return f"{who} died ({type(cause).__name__}{detail})"
    if cause is not None and cause < 0:
        try:
            name = signal.Signals(-cause).name
        except ValueError:
            name = f"signal {-cause}"
        return f"{who} killed by {name}"
    return f"{who} exited with code {cause}"


@dataclass(frozen=True)
class Retries:
    """What happens to an item of ``map(fn, items)`` whose worker died: it runs again on a
    fresh worker up to `retries` more times; after that it fails with the reason, through
    ``fn.failed(item, reason, attempts)`` if `fn` has that hook (a child's evaluator turns it
    into a failed child), else as :class:`WorkerError`. A result that needed more than one
    attempt goes through ``fn.retried(result, attempts)`` if `fn` has that hook."""

    fn: Callable[[Any], Any]
    retries: int

    def again(self, attempts: int) -> bool:
        """Whether an item whose worker died on its `attempts`-th attempt runs again."""
        return attempts <= self.retries

    def result(self, outcome: Any, attempts: int) -> Any:
        retried = getattr(self.fn, "retried", None)
        return retried(outcome, attempts) if attempts > 1 and retried else outcome

    def failed(self, item: Any, reason: str, attempts: int, label: Any = None) -> Any:
        """The outcome of an item that failed for `reason` (WorkerError without the hook)."""
        failed = getattr(self.fn, "failed", None)
        if failed is None:
            raise WorkerError(f"item {repr(item) if label is None else label}: {reason}")
        return failed(item, reason, attempts)

    def died_every_time(self, item: Any, reason: str, attempts: int, label: Any = None) -> Any:
        """The outcome of an item whose worker died on each of its `attempts`."""
        return self.failed(item, f"{reason} (on each of {attempts} attempts)", attempts, label)

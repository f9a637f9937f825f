"""Where children are evaluated. The search only calls ``executor.map(fn, items)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

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

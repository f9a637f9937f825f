"""Children as Ray tasks, with resource requests and retries when a worker dies.

Each child is one task (``num_cpus``/``num_gpus`` as configured; a child given GPUs trains on
``cuda``, which inside the task is the GPU Ray assigned to it, see
:func:`pynas.search.execution.child_device`). The retries are ours, not
Ray's (``max_retries=0``): a child whose worker process died (SIGKILL, out of memory, a lost
node) is submitted again up to ``retries`` times, so every record knows its attempts and, in
the end, why it failed. An exception inside the child never gets here: the evaluator turns it
into a failed result.

:class:`RayExecutor` offers the same ``map(fn, items)`` as the local executors, for the
synchronous search loop (random search, evolution); REINFORCE on Ray uses the parameter
servers instead (:mod:`pynas.search.distributed.search`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pynas.executors.base import Retries, death_reason
from pynas.executors.ray_runtime import import_ray
from pynas.executors.worker import IDLE_NAME, child_process_name, set_process_name


def run_child(fn: Callable[[Any], Any], item: Any) -> Any:
    """The body of a child task (named ``ps -o comm`` = ``pynas-c<index>`` while it runs)."""
    set_process_name(child_process_name(item))
    try:
        return fn(item)
    finally:
        set_process_name(IDLE_NAME)


class RayChildRunner:
    """Run items through ``fn`` as Ray tasks; yield outcomes as they finish."""

    def __init__(
        self, fn: Callable[[Any], Any], num_cpus: float = 1.0, num_gpus: float = 0.0,
        retries: int = 2,
    ) -> None:  # fmt: skip
        ray = import_ray()
        self.fn = fn
        self.retries = Retries(fn, retries)
        self._fn_ref = ray.put(fn)
        # A GPU child gets a fresh worker process: Ray sets CUDA_VISIBLE_DEVICES per task, but a
        # process keeps the GPUs it saw when it first used CUDA (Ray's own default for GPU
        # functions, which it applies only to num_gpus given to ray.remote, not to .options).
        remote = ray.remote(max_calls=1)(run_child) if num_gpus > 0 else ray.remote(run_child)
        self._task = remote.options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0, name="pynas_child"
        )

    def run(
        self,
        items: Iterable[Any],
        deaths: Callable[[Any], int] | None = None,
        on_death: Callable[[Any], None] | None = None,
    ) -> Iterator[Any]:
        """Outcomes of `items` as they finish.

        `deaths(item)` is how many workers already died on the item (in an earlier run of it,
        e.g. by a replica that died since); `on_death(item)` is called on each new one. Both
        let a caller keep the retry budget of a child across restarts of the caller.
        """
        ray = import_ray()
        from ray.exceptions import RayTaskError, TaskCancelledError

        pending: dict[Any, tuple[Any, int]] = {}
        for item in items:
            before = deaths(item) if deaths is not None else 0
            if not self.retries.again(before):
                yield self.retries.died_every_time(item, "Ray worker died", before)
                continue
            pending[self._task.remote(self._fn_ref, item)] = (item, before + 1)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                item, attempts = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except (RayTaskError, TaskCancelledError) as exc:  # not a dead worker
                    yield self.retries.failed(item, f"child task failed: {exc}"[:500], attempts)
                    continue
                except ray.exceptions.RayError as exc:  # the worker (or its node) died
                    if on_death is not None:
                        on_death(item)
                    if self.retries.again(attempts):
                        pending[self._task.remote(self._fn_ref, item)] = (item, attempts + 1)
                    else:
                        reason = death_reason(exc, "Ray worker")
                        yield self.retries.died_every_time(item, reason, attempts)
                    continue
                yield self.retries.result(outcome, attempts)


class RayExecutor:
    """``map(fn, items)`` with each item a Ray task, for the synchronous search loop.

    Ray is started (or joined at `address`) on first use; ``workers`` is how many children
    the cluster runs at once. ``close`` shuts down a Ray instance this executor connected to.
    """

    def __init__(
        self, address: str | None = None, num_cpus: float = 1.0, num_gpus: float = 0.0,
        retries: int = 2,
    ) -> None:  # fmt: skip
        self.address = address
        self.num_cpus, self.num_gpus, self.retries = num_cpus, num_gpus, retries
        self._connected: bool | None = None  # None: not yet; True: we started/joined Ray
        self._runner: RayChildRunner | None = None

    def _connect(self) -> None:
        if self._connected is None:
            from pynas.executors.ray_runtime import connect

            self._connected = connect(self.address)

    @property
    def workers(self) -> int:
        from pynas.executors.ray_runtime import cluster_cpus

        self._connect()
        return max(1, int(cluster_cpus() // self.num_cpus)) if self.num_cpus > 0 else 1

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        self._connect()
        if self._runner is None or self._runner.fn is not fn:
            self._runner = RayChildRunner(fn, self.num_cpus, self.num_gpus, self.retries)
        return self._runner.run(items)

    def close(self) -> None:
        if self._connected:
            import_ray().shutdown()
        self._connected = None
        self._runner = None

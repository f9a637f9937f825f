"""Build the search object that the execution settings ask for (see :mod:`.options`).

* local, in this process: :class:`pynas.search.loop.Search` with the in-process executor;
* local, ``--workers N``: the same loop over a :class:`~pynas.executors.pool.WorkerPool`;
* ray, REINFORCE: :class:`pynas.search.distributed.search.RaySearch` (parameter servers, replicas);
* ray, other strategies: the same loop with each child a Ray task (:class:`RayExecutor`).

A weight-sharing search (``--weights shared``) is
:class:`pynas.search.shared_loop.SharedSearch` in this process (:func:`make_shared_search`).
All of them write the same run directory. Nothing starts before ``run_all``; ``close``
releases the workers and Ray afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynas.executors.child import ChildEvaluator, TaskSpec
from pynas.search.settings import ExecutionSettings


def make_search(
    settings: ExecutionSettings,
    run: Any,
    task: Any,
    spec: TaskSpec,
    run_settings: Any,
    strategy: Any,
    display: Any,
) -> tuple[Any, Callable[[], None]]:
    """(search with ``restore()``/``run_all()``/``records``/``on_record``, close function)."""
    from pynas.search.loop import Search
    from pynas.strategies import Reinforce

    if settings.on_ray and isinstance(strategy, Reinforce):
        from pynas.search.distributed.search import RaySearch

        search = RaySearch(run, task, spec, run_settings, strategy, settings, display)
        return search, lambda: None  # RaySearch.run_all releases Ray itself
    evaluator = ChildEvaluator(spec, task)
    executor: Any
    if settings.on_ray:
        from pynas.executors.ray_children import RayExecutor

        executor = RayExecutor(
            settings.address, settings.child_cpus, settings.child_gpus, settings.child_retries
        )
    elif settings.workers:
        from pynas.executors.pool import WorkerPool

        executor = WorkerPool(settings.workers, settings.child_retries, spec.threads)
    else:
        search = Search(run, task, strategy, run_settings.budget, display=display)
        return search, lambda: None
    search = Search(run, task, strategy, run_settings.budget, executor, display, evaluate=evaluator)
    return search, executor.close


def make_shared_search(
    run: Any, run_settings: Any, strategy: Any, display: Any, data_dir: str | None
) -> tuple[Any, Callable[[], None]]:
    """(the weight-sharing search of a run whose settings have ``shared``, close function)."""
    from pynas.search.shared_loop import SharedSearch
    from pynas.tasks.ptb.corpus import load_corpus
    from pynas.tasks.ptb.shared import SharedEngine

    shared = run_settings.shared
    engine = SharedEngine(shared.engine, load_corpus(data_dir))
    search = SharedSearch(
        run, strategy, strategy.space, engine, shared, run_settings.budget, display
    )
    return search, lambda: None

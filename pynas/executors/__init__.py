"""Executors: the seam between the search loop and where children are trained.

``InProcessExecutor`` (the default) trains children in the search process, ``WorkerPool`` in
local worker processes (``--workers N``); Ray is used through :mod:`pynas.search.backends`
and imported only when asked for (``--executor ray``).
"""

from pynas.executors.base import Executor, InProcessExecutor
from pynas.executors.pool import WorkerPool

__all__ = ["Executor", "InProcessExecutor", "WorkerPool"]

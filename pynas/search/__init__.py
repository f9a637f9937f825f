"""Architecture search runs: the loop, the run directory (log, checkpoint) and the CLI.

``python -m pynas.search --task ptb --data-dir DIR --run-dir RUN``; see ``--help``.
"""

from pynas.search.budgets import BUDGETS, Budget, get_budget
from pynas.search.loop import Search
from pynas.search.rundir import RunDir, RunDirError
from pynas.search.tasks import SearchTask, make_task

__all__ = [
    "BUDGETS",
    "Budget",
    "RunDir",
    "RunDirError",
    "Search",
    "SearchTask",
    "get_budget",
    "make_task",
]

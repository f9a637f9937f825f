"""Architecture search runs: the loop, the run directory (log, checkpoint) and the CLI.

``python -m pynas.search --task ptb --data-dir DIR --run-dir RUN``; see ``--help``.
"""

from pynas.search.loop import Search
from pynas.search.rundir import RunDir, RunDirError
from pynas.tasks.base import Budget, SearchTask
from pynas.tasks.registry import make_task

__all__ = ["Budget", "RunDir", "RunDirError", "Search", "SearchTask", "make_task"]

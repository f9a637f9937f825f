"""Architecture search runs: the loops, the run journal (log, checkpoint) and the CLI.

``python -m pynas.search --task ptb --data-dir DIR --run-dir RUN``; see ``--help``.
"""

from pynas.search.journal import RunDirError, RunJournal
from pynas.search.loop import Search
from pynas.tasks.base import Budget, SearchTask
from pynas.tasks.registry import make_task

__all__ = ["Budget", "RunDirError", "RunJournal", "Search", "SearchTask", "make_task"]

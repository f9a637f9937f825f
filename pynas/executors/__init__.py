"""Executors: the seam between the search loop and where children are trained."""

from pynas.executors.base import Executor, InProcessExecutor

EXECUTORS = {"inprocess": InProcessExecutor}

__all__ = ["EXECUTORS", "Executor", "InProcessExecutor"]

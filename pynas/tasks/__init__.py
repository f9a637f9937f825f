"""Tasks: data, child training and reward for each benchmark."""

from pynas.tasks.result import ChildResult

__all__ = ["ChildResult"]

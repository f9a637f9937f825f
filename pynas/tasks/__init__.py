"""Tasks: one package per benchmark (``ptb``, ``cifar10``, ``toy``), each providing its data,
child settings, training, reward, metric, search space, budgets, retraining, model builder and
command-line options behind :class:`pynas.tasks.base.Task`; :data:`pynas.tasks.registry.TASKS`
lists them. ``data`` and ``device`` are what the tasks share: finding data on disk, and checking
the device a child trains on."""

from pynas.tasks.base import Budget, ChildResult, SearchTask, Task

__all__ = ["Budget", "ChildResult", "SearchTask", "Task"]

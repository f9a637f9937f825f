"""``python -m pynas.data``: fetch the data of the tasks that pynas does not ship.

Penn Treebank ships inside pynas (``pynas/tasks/ptb/packaged/``); a task that can fetch its
data (CIFAR-10: ``python -m pynas.data fetch cifar10 --dest DIR``) provides ``Task.fetch``.
"""

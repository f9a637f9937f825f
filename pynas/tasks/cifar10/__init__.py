"""The CIFAR-10 task (SPEC §3, §5): CNNs with skip connections scored by validation accuracy.

* :mod:`.dataset`: the ``.npz`` files, the held-out validation split, augmentation;
* :mod:`.fetch`: ``python -m pynas.data fetch cifar10`` (download, verify, convert);
* :mod:`.training`: how one child is trained and scored (:class:`CIFAR10Config`, reward);
* :mod:`.task`: the task the rest of pynas uses (:data:`TASK`): child settings with the depth
  schedule, budgets, search task, retraining, model builder, ``python -m pynas.train --task
  cifar10``.
"""

from pynas.tasks.cifar10.dataset import CifarData, Split, load_cifar10
from pynas.tasks.cifar10.task import CIFAR10Child, CIFAR10Retraining, CIFAR10Task, depth_at
from pynas.tasks.cifar10.training import (
    CIFAR10Config,
    child_device,
    evaluate_accuracy,
    reward_from_accuracies,
    train_child,
    train_model,
)

TASK = CIFAR10Task()

__all__ = [
    "TASK",
    "CIFAR10Child",
    "CIFAR10Config",
    "CIFAR10Retraining",
    "CIFAR10Task",
    "CifarData",
    "Split",
    "child_device",
    "depth_at",
    "evaluate_accuracy",
    "load_cifar10",
    "reward_from_accuracies",
    "train_child",
    "train_model",
]

"""After the search: retrain a run's best architectures over a grid, report the test split.

``python -m pynas.retrain RUN --top K``; see ``--help``. :func:`evaluate_saved` scores a saved
model on its task's data in one call.
"""

from pynas.retrain.evaluate import evaluate_saved
from pynas.retrain.runner import Retrain

__all__ = ["Retrain", "evaluate_saved"]

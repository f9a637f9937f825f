"""The Penn Treebank task (SPEC §7): tree-cell language models scored by validation perplexity.

* :mod:`.corpus`: the data (the copy inside pynas in ``packaged/``, or a directory of the three
  text files), vocabulary, BPTT batches;
* :mod:`.training`: how one child is trained and scored (:class:`PTBConfig`, reward, divergence);
* :mod:`.task`: the task the rest of pynas uses (:data:`TASK`): child settings, budgets, search
  task, retraining, model builder, ``python -m pynas.train --task ptb``.
"""

from pynas.tasks.ptb.corpus import Corpus, batchify, bptt_windows, load_corpus
from pynas.tasks.ptb.task import MEDIUM_BASELINE_PARAMS, PTBChild, PTBRetraining, PTBTask
from pynas.tasks.ptb.training import (
    PTBConfig,
    child_device,
    divergence,
    evaluate_ppl,
    reward_from_ppl,
    train_child,
    train_model,
)

TASK = PTBTask()

__all__ = [
    "MEDIUM_BASELINE_PARAMS",
    "TASK",
    "Corpus",
    "PTBChild",
    "PTBConfig",
    "PTBRetraining",
    "PTBTask",
    "batchify",
    "bptt_windows",
    "child_device",
    "divergence",
    "evaluate_ppl",
    "load_corpus",
    "reward_from_ppl",
    "train_child",
    "train_model",
]

"""Run the controller's tiny tensor ops on one thread.

Its matrices are ~35 wide: thread start-up and spin-waiting cost far more than they save, and
on a loaded machine a multi-threaded tiny LSTM step can be 20x slower than a single thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if previous != 1:
            torch.set_num_threads(previous)

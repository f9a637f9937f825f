"""Architectures as data: validated objects with one canonical JSON form."""

from pynas.arch.errors import ArchitectureError
from pynas.arch.rnn_cell import ACTIVATIONS, COMBINES, NAMED_CELLS, RNNCell, load_rnn_cell

__all__ = [
    "ACTIVATIONS",
    "COMBINES",
    "NAMED_CELLS",
    "ArchitectureError",
    "RNNCell",
    "load_rnn_cell",
]

"""Architectures as data: validated objects with one canonical JSON form."""

from pynas.arch.conv_net import (
    LAYER_OPTIONS,
    NAMED_CONV_NETS,
    ConvLayer,
    ConvNet,
    LayerOption,
    load_conv_net,
)
from pynas.arch.errors import ArchitectureError
from pynas.arch.rnn_cell import ACTIVATIONS, COMBINES, NAMED_CELLS, RNNCell, load_rnn_cell

__all__ = [
    "ACTIVATIONS",
    "COMBINES",
    "LAYER_OPTIONS",
    "NAMED_CELLS",
    "NAMED_CONV_NETS",
    "ArchitectureError",
    "ConvLayer",
    "ConvNet",
    "LayerOption",
    "RNNCell",
    "load_conv_net",
    "load_rnn_cell",
]

"""The PTB child: embedding -> layers of the searched cell -> softmax (SPEC §7)."""

from __future__ import annotations

import math

from torch import nn

from pynas.arch import RNNCell
from pynas.children.tree_rnn import DEFAULT_IMPL, TreeCellLayer
from pynas.children.word_language_model import State, WordLanguageModel

__all__ = ["CellLanguageModel", "State", "hidden_for_param_budget"]


class CellLanguageModel(WordLanguageModel):
    """Word-level language model whose recurrent layers are the searched tree cell."""

    def __init__(
        self,
        arch: RNNCell,
        vocab_size: int,
        hidden_size: int,
        num_layers: int = 2,
        dropout: float = 0.2,
        tie_weights: bool = True,
        impl: str = DEFAULT_IMPL,
    ) -> None:
        super().__init__(
            vocab_size,
            hidden_size,
            lambda: nn.ModuleList(
                TreeCellLayer(arch, hidden_size, hidden_size, impl=impl) for _ in range(num_layers)
            ),
            dropout,
            tie_weights,
        )
        self.arch = arch


def hidden_for_param_budget(
    base: int, vocab_size: int, budget: int, num_layers: int = 2, tie_weights: bool = True
) -> int:
    """The largest hidden size whose model has at most `budget` parameters (SPEC §7)."""
    # params(H) = a*H^2 + b*H + vocab; a, b from the layer and embedding shapes.
    a = num_layers * 2 * base
    b = (1 if tie_weights else 2) * vocab_size + num_layers * base
    disc = b * b + 4 * a * (budget - vocab_size)
    if disc < 0 or budget <= vocab_size:
        raise ValueError(f"parameter budget {budget} is too small for vocabulary {vocab_size}")
    return max(1, int((-b + math.sqrt(disc)) / (2 * a)))

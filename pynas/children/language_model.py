"""The PTB child: embedding -> layers of the searched cell -> softmax (SPEC §7)."""

from __future__ import annotations

import math

import torch
from torch import nn

from pynas.arch import RNNCell
from pynas.children.tree_rnn import DEFAULT_IMPL, TreeCellLayer

State = list[tuple[torch.Tensor, torch.Tensor]]


class CellLanguageModel(nn.Module):
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
        super().__init__()
        self.arch = arch
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.layers = nn.ModuleList(
            TreeCellLayer(arch, hidden_size, hidden_size, impl=impl) for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if not tie_weights:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def init_state(self, batch_size: int) -> State:
        zeros = self.embedding.weight.new_zeros(batch_size, self.hidden_size)
        return [(zeros, zeros) for _ in self.layers]

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens [T, B] -> logits [T, B, vocab], new state."""
        x = self.dropout(self.embedding(tokens))
        new_state = []
        for layer, layer_state in zip(self.layers, state, strict=True):
            x, layer_state = layer(x, layer_state)
            x = self.dropout(x)
            new_state.append(layer_state)
        return self.decoder(x), new_state


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

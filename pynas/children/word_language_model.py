"""The frame every PTB language model shares: embedding -> recurrent layers -> decoder.

Dropout is applied to the embedding output, between layers and before the decoder,
independently per element; the decoder is tied to the embedding by default (SPEC §7). The
subclasses differ only in their layers: the searched tree cell
(:class:`~pynas.children.language_model.CellLanguageModel`), the layers every cell shares
(:class:`~pynas.children.shared_language_model.SharedCellLanguageModel`) and ``nn.LSTM`` /
``nn.GRU`` (:class:`~pynas.children.baseline_rnn.RNNLanguageModel`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

#: Per layer (h, c), each [B, H] (a layer without a cell state has c of shape [B, 0]).
State = list[tuple[torch.Tensor, torch.Tensor]]


class WordLanguageModel(nn.Module):
    """Word-level language model; every layer is called ``layer(x, (h, c), *layer_args)`` and
    returns ``(output [T, B, H], (h, c))``."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        make_layers: Callable[[], nn.ModuleList],
        dropout: float,
        tie_weights: bool,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        # Built after the embedding, so a seed gives the weights it always gave.
        self.layers = make_layers()
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

    def hidden_states(
        self, tokens: torch.Tensor, state: State, *layer_args: Any
    ) -> tuple[torch.Tensor, State]:
        """tokens [T, B] -> the last layer's output after dropout [T, B, H], new state."""
        x = self.dropout(self.embedding(tokens))
        new_state = []
        for layer, layer_state in zip(self.layers, state, strict=True):
            x, layer_state = layer(x, layer_state, *layer_args)
            x = self.dropout(x)
            new_state.append(layer_state)
        return x, new_state

    def forward(
        self, tokens: torch.Tensor, state: State, *layer_args: Any
    ) -> tuple[torch.Tensor, State]:
        """tokens [T, B] -> logits [T, B, vocab], new state."""
        x, new_state = self.hidden_states(tokens, state, *layer_args)
        return self.decoder(x), new_state

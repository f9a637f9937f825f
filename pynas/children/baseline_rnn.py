"""LSTM and GRU baselines on the PTB child's harness, and hidden sizes for a parameter budget.

:class:`RNNLanguageModel` is :class:`~pynas.children.language_model.CellLanguageModel` with
``nn.LSTM`` or ``nn.GRU`` layers instead of the searched cell: the same embedding, dropout
(on the embedding, between layers, before the decoder) and tied decoder, the same
``init_state`` / ``forward(tokens, state)`` contract, so ``pynas.tasks.ptb.train_model(...,
build=...)`` trains and scores it like a child. :func:`hidden_for_budget` picks the hidden size
that fits a parameter budget for a cell, an LSTM or a GRU, so they can be compared at equal
parameter counts.
"""

from __future__ import annotations

import math

from torch import nn

from pynas.arch import RNNCell
from pynas.children.language_model import hidden_for_param_budget
from pynas.children.word_language_model import State, WordLanguageModel

#: Baseline layer kinds and the gates of each: an LSTM layer has 4 H x H blocks per input
#: (input, forget, cell, output), a GRU 3 (reset, update, new); each block has two biases.
BASELINE_GATES: dict[str, int] = {"lstm": 4, "gru": 3}
BASELINES = tuple(BASELINE_GATES)


def _check_kind(kind: str) -> None:
    if kind not in BASELINE_GATES:
        raise ValueError(f"baseline must be one of {list(BASELINES)}, got {kind!r}")


class _LSTMLayer(nn.LSTM):
    """One ``nn.LSTM`` layer with the tree layers' call: ``(x, (h, c)) -> (out, (h, c))``."""

    def forward(self, x, state):  # type: ignore[override]
        h, c = state
        out, (h_n, c_n) = super().forward(x, (h.unsqueeze(0), c.unsqueeze(0)))
        return out, (h_n[0], c_n[0])


class _GRULayer(nn.GRU):
    """One ``nn.GRU`` layer with the tree layers' call; its empty ``c`` passes through."""

    def forward(self, x, state):  # type: ignore[override]
        h, c = state
        out, h_n = super().forward(x, h.unsqueeze(0))
        return out, (h_n[0], c)


class RNNLanguageModel(WordLanguageModel):
    """Word-level language model with ``nn.LSTM`` / ``nn.GRU`` layers (one module per layer,
    dropout between them as for the tree cell).

    The state is, per layer, a pair ``(h, c)`` as for the tree cell; a GRU has no cell state,
    so its ``c`` is an empty ``[B, 0]`` tensor.
    """

    def __init__(
        self,
        kind: str,
        vocab_size: int,
        hidden_size: int,
        num_layers: int = 2,
        dropout: float = 0.2,
        tie_weights: bool = True,
    ) -> None:
        _check_kind(kind)
        layer = _LSTMLayer if kind == "lstm" else _GRULayer
        super().__init__(
            vocab_size,
            hidden_size,
            lambda: nn.ModuleList(layer(hidden_size, hidden_size) for _ in range(num_layers)),
            dropout,
            tie_weights,
        )
        self.kind = kind

    def init_state(self, batch_size: int) -> State:
        if self.kind == "lstm":
            return super().init_state(batch_size)
        h = self.embedding.weight.new_zeros(batch_size, self.hidden_size)
        return [(h, h.new_zeros(batch_size, 0)) for _ in self.layers]


def count_parameters(
    model: RNNCell | str,
    vocab_size: int,
    hidden_size: int,
    num_layers: int = 2,
    tie_weights: bool = True,
) -> int:
    """Parameters of the PTB language model of `model` (a cell, "lstm" or "gru") at a hidden
    size, without building it: embedding, layers, decoder (weight unless tied, bias)."""
    if isinstance(model, RNNCell):
        # per layer weight_ih and weight_hh [H, N*H], bias [N*H]
        layer = 2 * model.base * hidden_size**2 + model.base * hidden_size
    else:
        _check_kind(model)
        gates = BASELINE_GATES[model]
        # per layer weight_ih, weight_hh [gates*H, H], bias_ih, bias_hh [gates*H]
        layer = 2 * gates * hidden_size**2 + 2 * gates * hidden_size
    embedding = vocab_size * hidden_size
    decoder = (0 if tie_weights else vocab_size * hidden_size) + vocab_size
    return embedding + num_layers * layer + decoder


def hidden_for_budget(
    model: RNNCell | str,
    vocab_size: int,
    budget: int,
    num_layers: int = 2,
    tie_weights: bool = True,
) -> int:
    """The largest hidden size whose model of `model` (a cell, "lstm" or "gru") has at most
    `budget` parameters (:func:`count_parameters`)."""
    if isinstance(model, RNNCell):
        return hidden_for_param_budget(model.base, vocab_size, budget, num_layers, tie_weights)
    _check_kind(model)
    if count_parameters(model, vocab_size, 1, num_layers, tie_weights) > budget:
        raise ValueError(f"parameter budget {budget} is too small for vocabulary {vocab_size}")
    # count(H) = a*H^2 + b*H + vocab: solve, then step to the exact boundary.
    gates = BASELINE_GATES[model]
    a = num_layers * 2 * gates
    b = (1 if tie_weights else 2) * vocab_size + num_layers * 2 * gates
    hidden = max(1, int((-b + math.sqrt(b * b + 4 * a * (budget - vocab_size))) / (2 * a)))

    def fits(h: int) -> bool:
        return count_parameters(model, vocab_size, h, num_layers, tie_weights) <= budget

    while fits(hidden + 1):  # float rounding
        hidden += 1
    while hidden > 1 and not fits(hidden):
        hidden -= 1
    return hidden

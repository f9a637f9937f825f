"""One language model whose weights every base-N tree cell shares (SPEC §9).

Every base-N cell of SPEC §2 reads the same leaf projections ``x·W_i + b_i`` and ``h·U_i``
(i < N) and differs only in the parameter-free tree above them. So one set of parameters —
embedding, per layer ``weight_ih [in, N·H]``, ``bias [N·H]``, ``weight_hh [H, N·H]``, and the
decoder (tied to the embedding by default) — serves every architecture of the space. An
architecture is a program (:func:`pynas.ops.stack_programs`); ``row_program [B]`` says which
program each batch row runs, so one forward (one fused-op call per layer) trains or scores
several architectures on disjoint rows.

The parameters have the names and shapes of :class:`~pynas.children.language_model.
CellLanguageModel`, so ``CellLanguageModel(arch, ...).load_state_dict(shared.state_dict())``
(what :meth:`SharedCellLanguageModel.standalone` does) gives any architecture its standalone
model with the shared weights.
"""

from __future__ import annotations

import torch
from torch import nn

from pynas.arch import RNNCell
from pynas.children.language_model import CellLanguageModel
from pynas.children.tree_rnn import DEFAULT_IMPL, TreeLeaves
from pynas.children.word_language_model import WordLanguageModel
from pynas.ops.tree_cell import Programs, tree_cell_sequence, tree_cell_sequence_reference


class SharedTreeCellLayer(TreeLeaves):
    """One recurrent layer whose program is chosen per call and per batch row.

    The parameters and initialisation of :class:`~pynas.children.tree_rnn.TreeCellLayer`, so
    a shared model and a standalone child start from one distribution.
    """

    def __init__(
        self, base: int, input_size: int, hidden_size: int, impl: str = DEFAULT_IMPL
    ) -> None:
        super().__init__(base, input_size, hidden_size, impl)
        self.base = base

    def forward(
        self,
        x: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        programs: Programs,
        row_program: torch.Tensor,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h0, c0 = state
        xproj = self.project(x)
        run = tree_cell_sequence if self.impl == "fused" else tree_cell_sequence_reference
        out, h, c = run(programs, xproj, h0, c0, self.weight_hh, row_program=row_program)
        return out, (h, c)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, base={self.base}, impl={self.impl}"


class SharedCellLanguageModel(WordLanguageModel):
    """Embedding -> layers shared by every base-N cell -> decoder, as CellLanguageModel.

    ``forward(tokens, state, programs, row_program)``: row b runs program ``row_program[b]``
    of ``programs`` in every layer. Dropout (``dropout``) is applied as in the standalone
    child: on the embedding output, between layers and before the decoder.
    """

    def __init__(
        self,
        base: int,
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
                SharedTreeCellLayer(base, hidden_size, hidden_size, impl=impl)
                for _ in range(num_layers)
            ),
            dropout,
            tie_weights,
        )
        self.base = base
        self.vocab_size = vocab_size
        self.num_layers = num_layers
        self.dropout_p = dropout
        self.tie_weights = tie_weights
        self.impl = impl

    def standalone(self, arch: RNNCell) -> CellLanguageModel:
        """`arch`'s own :class:`CellLanguageModel` holding a copy of the shared weights."""
        if arch.base != self.base:
            raise ValueError(f"architecture has base {arch.base}, the shared model {self.base}")
        model = CellLanguageModel(
            arch,
            self.vocab_size,
            self.hidden_size,
            num_layers=self.num_layers,
            dropout=self.dropout_p,
            tie_weights=self.tie_weights,
            impl=self.impl,
        ).to(self.embedding.weight)
        model.load_state_dict(self.state_dict())
        return model

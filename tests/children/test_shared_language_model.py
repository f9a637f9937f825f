"""The shared model against each architecture's own CellLanguageModel with the same weights."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from pynas.arch import NAMED_CELLS, RNNCell
from pynas.children.language_model import CellLanguageModel
from pynas.children.shared_language_model import SharedCellLanguageModel
from pynas.ops import stack_programs
from pynas.spaces import RNNCellSpace
from pynas.tasks.ptb.shared import rows_per_program

VOCAB, HIDDEN, STEPS = 23, 6, 5


def random_cell(base: int, rng: random.Random) -> RNNCell:
    space = RNNCellSpace(base)
    return space.to_arch(space.sample(rng))


def random_state(model, batch: int, gen: torch.Generator):
    return [
        (
            torch.randn(batch, HIDDEN, dtype=torch.float64, generator=gen) * 0.5,
            torch.randn(batch, HIDDEN, dtype=torch.float64, generator=gen) * 0.5,
        )
        for _ in model.layers
    ]


def sum_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
    )


@pytest.mark.parametrize("base, archs, batch, tie", [(4, 3, 7, True), (8, 5, 10, False)])
def test_shared_model_equals_each_architecture_on_its_rows(base, archs, batch, tie):
    """Fused shared model, m programs over uneven row groups == the reference impl of each
    architecture's CellLanguageModel on its rows: logits, final state and every gradient."""
    rng = random.Random(base * 100 + archs)
    cells = [random_cell(base, rng) for _ in range(archs - 1)] + [
        NAMED_CELLS["nas_cell"] if base == 8 else random_cell(base, rng)
    ]
    torch.manual_seed(base)
    shared = SharedCellLanguageModel(base, VOCAB, HIDDEN, dropout=0.0, tie_weights=tie).double()
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, VOCAB, (STEPS + 1, batch), generator=gen)
    state = random_state(shared, batch, gen)
    row_program = rows_per_program(archs, batch)

    logits, new_state = shared(tokens[:-1], state, stack_programs(cells), row_program)
    sum_loss(logits, tokens[1:]).backward()
    shared_grads = {n: p.grad for n, p in shared.named_parameters()}

    want_grads = {n: torch.zeros_like(p) for n, p in shared.named_parameters()}
    for k, cell in enumerate(cells):
        rows = (row_program == k).nonzero().flatten()
        own = CellLanguageModel(
            cell, VOCAB, HIDDEN, dropout=0.0, tie_weights=tie, impl="reference"
        ).double()
        own.load_state_dict(shared.state_dict())
        own_state = [(h[rows], c[rows]) for h, c in state]
        own_logits, own_new = own(tokens[:-1, rows], own_state)
        torch.testing.assert_close(logits[:, rows], own_logits, rtol=1e-10, atol=1e-10)
        for (h, c), (own_h, own_c) in zip(new_state, own_new, strict=True):
            torch.testing.assert_close(h[rows], own_h, rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(c[rows], own_c, rtol=1e-10, atol=1e-10)
        sum_loss(own_logits, tokens[1:, rows]).backward()
        for name, p in own.named_parameters():
            want_grads[name] += p.grad
    for name, grad in shared_grads.items():
        torch.testing.assert_close(grad, want_grads[name], rtol=1e-9, atol=1e-10, msg=name)


def test_fused_and_reference_shared_models_agree():
    rng = random.Random(3)
    cells = [random_cell(8, rng) for _ in range(4)]
    torch.manual_seed(0)
    fused = SharedCellLanguageModel(8, VOCAB, HIDDEN, dropout=0.0).double()
    reference = SharedCellLanguageModel(8, VOCAB, HIDDEN, dropout=0.0, impl="reference").double()
    reference.load_state_dict(fused.state_dict())
    gen = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, VOCAB, (STEPS + 1, 8), generator=gen)
    state = random_state(fused, 8, gen)
    programs, row_program = stack_programs(cells), rows_per_program(4, 8)
    for model in (fused, reference):
        logits, _ = model(tokens[:-1], state, programs, row_program)
        sum_loss(logits, tokens[1:]).backward()
    for (name, p), q in zip(fused.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-10, msg=name)


def test_standalone_copies_the_shared_weights():
    shared = SharedCellLanguageModel(8, VOCAB, HIDDEN)
    model = shared.standalone(NAMED_CELLS["nas_cell"])
    assert isinstance(model, CellLanguageModel) and model.arch == NAMED_CELLS["nas_cell"]
    for (name, p), q in zip(shared.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    with torch.no_grad():
        model.embedding.weight.add_(1.0)
    assert not torch.equal(model.embedding.weight, shared.embedding.weight)  # a copy
    assert model.decoder.weight is model.embedding.weight  # still tied
    with pytest.raises(ValueError, match="base 4"):
        shared.standalone(random_cell(4, random.Random(0)))


def test_rows_per_program_splits_rows_into_contiguous_groups():
    assert rows_per_program(3, 7).tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert rows_per_program(1, 4).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="cannot split 4 batch rows between 5"):
        rows_per_program(5, 4)

"""The shared-weights engine: isolation of diverging architectures, scoring, carried state,
checkpoints."""

from __future__ import annotations

import io
import math
import random

import pytest
import torch
from torch import nn

from pynas.arch import NAMED_CELLS, RNNCell
from pynas.children.language_model import CellLanguageModel
from pynas.ops import stack_programs
from pynas.spaces import RNNCellSpace
from pynas.tasks.base import FAILURE_REWARD, ChildResult
from pynas.tasks.ptb import batchify, evaluate_ppl, load_corpus
from pynas.tasks.ptb.shared import (
    FAILED_TOLD,
    SharedConfig,
    SharedEngine,
    rows_per_program,
    told_reward,
)

pytestmark = pytest.mark.usefixtures("one_thread")

NAS = NAMED_CELLS["nas_cell"]
TINY = SharedConfig(
    hidden=16, batch_size=8, bptt=10, lr=10.0, train_tokens=20_000, valid_tokens=2_000,
    eval_batch_size=4, outlier_nats=None, clip_per_arch=False,
)  # fmt: skip


def uniform_cell(leaf, internal, inject=("add", "identity")) -> RNNCell:
    nodes = (leaf,) * 8 + (internal,) * 7
    return RNNCell(base=8, nodes=nodes, inject=inject, c_out=14, inject_at=14)


# h_t = sum of all leaves' x·W_i + h·U_i: a linear recurrence that explodes when U is large.
SUM_CELL = uniform_cell(("add", "identity"), ("add", "identity"))
TANH_CELL = uniform_cell(("add", "tanh"), ("add", "tanh"), ("add", "tanh"))


@pytest.fixture(scope="module")
def corpus(ptb_dir):
    return load_corpus(ptb_dir)


def exploding_engine(corpus, config: SharedConfig = TINY) -> SharedEngine:
    """An engine whose recurrent weights are 3x their init: SUM_CELL explodes within a window,
    the saturating cells stay finite."""
    engine = SharedEngine(config, corpus)
    with torch.no_grad():
        for layer in engine.model.layers:
            layer.weight_hh.mul_(3.0)
    return engine


def all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def ppls(results: list[ChildResult]) -> list[float]:
    return [r.metrics["ppl"] if r.ok else math.inf for r in results]


# ----- isolation ---------------------------------------------------------------------------------


def test_without_isolation_the_exploding_cell_poisons_every_weight(corpus):
    """The control: plain shared training (mean loss of all rows, clip, SGD) turns the weights
    into NaN, so the isolation test below is not passing by luck."""
    engine = exploding_engine(corpus)
    archs = [NAS, SUM_CELL, TANH_CELL]
    programs, row_program = stack_programs(archs), rows_per_program(3, TINY.batch_size)
    state = engine.model.init_state(TINY.batch_size)
    for _ in range(15):
        inputs, targets = engine._next_window()
        logits, state = engine.model(inputs, state, programs, row_program)
        state = [(h.detach(), c.detach()) for h, c in state]
        loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
        engine.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(engine.model.parameters(), TINY.clip)
        engine.optimizer.step()
    assert not all_finite(engine.model)


@pytest.mark.parametrize("outlier_nats, split", [(None, False), (None, True)])
def test_exploding_cells_are_masked_and_the_others_keep_learning(corpus, outlier_nats, split):
    engine = exploding_engine(corpus, TINY.with_(outlier_nats=outlier_nats, clip_per_arch=split))
    archs = [NAS, SUM_CELL, TANH_CELL]
    before = ppls(engine.rank([NAS, TANH_CELL]))
    reports = [engine.train_step(archs) for _ in range(40)]
    assert all_finite(engine.model)
    assert all(r.skipped is None and r.loss is not None for r in reports)
    # SUM_CELL's rows are masked in every step, the others' never.
    assert all(r.masked_rows == [0, r.rows[1], 0] for r in reports)
    assert all(r.failed == [False, True, False] for r in reports)
    assert engine.totals.masked_rows == sum(r.rows[1] for r in reports)
    assert engine.totals.steps == 40 and engine.totals.steps_with_masking == 40
    assert set(engine.totals.reasons) <= {"loss above limit", "non-finite loss"}
    # A masked row starts the next window from zero.
    sum_rows = rows_per_program(3, TINY.batch_size) == 1
    assert all(bool((h[sum_rows] == 0).all() and (c[sum_rows] == 0).all()) for h, c in engine.state)
    after = ppls(engine.rank([NAS, TANH_CELL]))
    assert all(a < 0.5 * b for a, b in zip(after, before, strict=True)), (before, after)
    scored = engine.score([SUM_CELL, NAS])
    assert scored[0].status == "failed" and "shared weights" in scored[0].reason
    assert scored[0].reward == FAILURE_REWARD and scored[1].ok


def test_architectures_far_above_the_median_loss_are_masked(corpus):
    """lr 0, no dropout: the step's losses per architecture are known from a run without the
    rule; with it, the architecture above median + outlier_nats drops out of the loss."""
    config = TINY.with_(lr=0.0, dropout=0.0)
    archs = [NAS, TANH_CELL, uniform_cell(("add", "sigmoid"), ("add", "sigmoid"))]
    losses = SharedEngine(config, corpus).train_step(archs).losses
    assert len(set(losses)) == 3
    worst = max(range(3), key=lambda k: losses[k])
    report = SharedEngine(config.with_(outlier_nats=1e-6), corpus).train_step(archs)
    assert report.losses == losses
    assert report.masked_rows == [report.rows[k] if k == worst else 0 for k in range(3)]
    assert report.reasons[worst] == {"loss far above the step's median": report.rows[worst]}
    kept = [k for k in range(3) if k != worst]
    want = sum(losses[k] * report.rows[k] for k in kept) / sum(report.rows[k] for k in kept)
    assert report.loss == pytest.approx(want, rel=1e-5)
    # one architecture has no median to be compared with
    strict = SharedEngine(config.with_(outlier_nats=1e-6), corpus)
    alone = strict.train_step([archs[worst]])
    assert alone.skipped is None and alone.masked_rows == [0]


def _poison_rows(engine: SharedEngine, program: int, backward_only: bool, monkeypatch) -> None:
    """Rows running `program` get NaN outputs (or NaN gradients only) from the last layer."""
    original = engine.model.hidden_states

    class NaNGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, rows):
            ctx.save_for_backward(rows)
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            (rows,) = ctx.saved_tensors
            return grad.masked_fill(rows[None, :, None], math.nan), None

    def poisoned(tokens, state, programs, row_program):
        x, new_state = original(tokens, state, programs, row_program)
        rows = row_program == program
        if backward_only:
            return NaNGrad.apply(x, rows), new_state
        return x.masked_fill(rows[None, :, None], math.nan), new_state

    monkeypatch.setattr(engine.model, "hidden_states", poisoned)


def test_rows_with_nan_outputs_are_dropped_and_the_step_rerun(corpus, monkeypatch):
    engine = SharedEngine(TINY, corpus)
    _poison_rows(engine, 1, backward_only=False, monkeypatch=monkeypatch)
    report = engine.train_step([NAS, TANH_CELL, NAS, TANH_CELL])
    assert report.attempts == 2 and report.skipped is None and math.isfinite(report.loss)
    assert report.masked_rows == [0, 2, 0, 0]
    assert report.reasons[1] == {"non-finite loss": 2}
    assert all_finite(engine.model)


def test_rows_with_nan_gradients_are_blamed_and_the_step_rerun(corpus, monkeypatch):
    engine = SharedEngine(TINY, corpus)
    _poison_rows(engine, 2, backward_only=True, monkeypatch=monkeypatch)
    report = engine.train_step([NAS, TANH_CELL, NAS, TANH_CELL])
    assert report.attempts == 2 and report.skipped is None
    assert report.masked_rows == [0, 0, 2, 0]
    assert report.reasons[2] == {"non-finite gradient": 2}
    assert math.isfinite(report.grad_norm) and all_finite(engine.model)
    rows = rows_per_program(4, TINY.batch_size) == 2
    assert all(bool((h[rows] == 0).all()) for h, _ in engine.state)


def test_every_row_blamed_for_a_nan_gradient_skips_the_step_and_carries_zero_state(
    corpus, monkeypatch
):
    # found in a 45-minute random search with sharing: every row of a step blamed for a NaN
    # gradient left the previous attempt's state to be carried for no rows (IndexError)
    engine = SharedEngine(TINY, corpus)
    engine.train_step([NAS, TANH_CELL])  # a non-zero carried state
    before = {n: p.detach().clone() for n, p in engine.model.named_parameters()}
    _poison_rows(engine, 0, backward_only=True, monkeypatch=monkeypatch)
    report = engine.train_step([TANH_CELL])
    assert report.skipped == "every row masked" and report.loss is None
    assert report.masked_rows == [TINY.batch_size]
    assert report.reasons[0] == {"non-finite gradient": TINY.batch_size}
    assert all(bool((h == 0).all() and (c == 0).all()) for h, c in engine.state)
    for name, p in engine.model.named_parameters():
        assert torch.equal(p, before[name]), name
    monkeypatch.undo()
    assert engine.train_step([NAS, TANH_CELL]).skipped is None  # the next step trains again


def test_a_nan_gradient_no_row_explains_skips_the_step(corpus):
    engine = SharedEngine(TINY, corpus)
    before = {n: p.detach().clone() for n, p in engine.model.named_parameters()}
    handle = engine.model.decoder.bias.register_hook(lambda g: torch.full_like(g, math.nan))
    try:
        report = engine.train_step([NAS, TANH_CELL])
    finally:
        handle.remove()
    assert report.skipped == "non-finite gradient (no row to blame)"
    assert report.loss is None and report.masked_rows == [0, 0]
    assert engine.totals.skipped_steps == 1
    for name, p in engine.model.named_parameters():
        assert torch.equal(p, before[name]), name
    assert engine.train_step([NAS, TANH_CELL]).skipped is None  # the next step trains again


# ----- scoring -----------------------------------------------------------------------------------


def test_batched_scores_equal_each_architectures_own_evaluation(corpus):
    engine = SharedEngine(TINY, corpus)
    space, rng = RNNCellSpace(8), random.Random(0)
    for _ in range(5):
        engine.train_step([space.to_arch(space.sample(rng)) for _ in range(4)])
    archs = [NAS, TANH_CELL] + [space.to_arch(space.sample(rng)) for _ in range(3)]
    data = engine.valid_data[:26]  # 2 full windows and a short one
    results = engine.evaluate(archs, data)
    for arch, result in zip(archs, results, strict=True):
        want = evaluate_ppl(engine.model.standalone(arch), data, TINY.bptt)
        assert result.metrics["tokens"] == 25 * data.shape[1]
        if result.ok:
            assert result.metrics["ppl"] == pytest.approx(want, rel=1e-4)
            assert result.reward == pytest.approx(80 / want**2, rel=1e-4)
        elif "ppl" in result.metrics:  # the standalone child's divergence rule, ppl kept
            assert result.metrics["ppl"] == pytest.approx(want, rel=1e-4)
            assert want > corpus.vocab_size and "diverged" in result.reason
            assert result.reward == FAILURE_REWARD
        else:
            assert not math.isfinite(want), (result.reason, want)
    # rank(): the whole validation slice, in chunks, same numbers as one call
    whole = batchify(corpus.valid[: TINY.valid_tokens], TINY.eval_batch_size)
    ranked = engine.rank(archs, per_call=2)
    assert ppls(ranked) == pytest.approx(ppls(engine.evaluate(archs, whole)), rel=1e-5)


def test_score_moves_through_the_validation_split_and_wraps(corpus):
    engine = SharedEngine(TINY, corpus)
    windows = len(engine.valid_starts)
    first = engine.score([NAS], windows=2)[0].metrics["ppl"]
    second = engine.score([NAS], windows=2)[0].metrics["ppl"]
    assert first != second and engine.score_window == 4
    engine.score_window = windows - 1  # too few windows left: start again at the beginning
    again = engine.score([NAS], windows=2)[0].metrics["ppl"]
    assert again == pytest.approx(first, rel=1e-6) and engine.score_window == 2


def test_a_scored_architecture_fails_by_the_standalone_childs_rule(corpus):
    """Above the uniform model's ppl (the vocabulary size): failed, diverged, ppl kept."""
    engine = SharedEngine(TINY, corpus)
    good = engine._score_result(math.log(500.0), tokens=70)
    assert good.ok and good.reward == pytest.approx(80 / 500**2)
    assert good.metrics == {"ppl": pytest.approx(500.0), "tokens": 70}
    diverged = engine._score_result(math.log(2.0 * corpus.vocab_size), tokens=70)
    assert diverged.status == "failed" and diverged.reward == FAILURE_REWARD
    assert "diverged" in diverged.reason and "shared weights" in diverged.reason
    assert diverged.metrics["ppl"] == pytest.approx(2.0 * corpus.vocab_size)
    for loss in (math.nan, math.inf):
        broken = engine._score_result(loss, tokens=70)
        assert broken.status == "failed" and "non-finite" in broken.reason
        assert "ppl" not in broken.metrics


def test_a_strategy_is_told_none_for_a_failure():
    assert told_reward(ChildResult("ok", 0.5, {"ppl": 12.6})) == 0.5
    assert told_reward(ChildResult.failed("diverged")) is FAILED_TOLD is None


# ----- carried state, epochs, checkpoints ------------------------------------------------------


@pytest.mark.parametrize("policy", ["keep", "reset"])
def test_carried_state_when_a_rows_program_changes(corpus, policy):
    """lr 0 and no dropout: the second window's loss tells which state it started from."""
    config = TINY.with_(lr=0.0, dropout=0.0, carry_state=policy)

    def second_loss(first_archs, second_archs, fresh_state: bool) -> float:
        engine = SharedEngine(config, corpus)
        if fresh_state:
            engine.window = 1
        else:
            engine.train_step(first_archs)
        return engine.train_step(second_archs).loss

    changed = second_loss([NAS], [TANH_CELL], fresh_state=False)
    same = second_loss([TANH_CELL], [TANH_CELL], fresh_state=False)
    from_zero = second_loss(None, [TANH_CELL], fresh_state=True)
    assert same != pytest.approx(from_zero, rel=1e-6)  # the state carries under one program
    if policy == "reset":
        assert changed == pytest.approx(from_zero, rel=1e-6)
    else:
        assert changed != pytest.approx(from_zero, rel=1e-6)


def test_training_stream_wraps_into_the_next_epoch(corpus):
    engine = SharedEngine(TINY.with_(train_tokens=800), corpus)  # 100 steps x 8 rows: 10 windows
    assert engine.windows_per_epoch == 10
    reports = [engine.train_step([NAS]) for _ in range(11)]
    assert [(r.epoch, r.window) for r in reports[-2:]] == [(1, 9), (2, 0)]


def test_state_dict_resumes_exactly(corpus):
    archs = [NAS, SUM_CELL, TANH_CELL]
    straight = exploding_engine(corpus)
    want = [straight.train_step(archs).loss for _ in range(4)] + [
        straight.score([NAS, TANH_CELL])[1].metrics["ppl"]
    ]
    first = exploding_engine(corpus)
    got = [first.train_step(archs).loss for _ in range(2)]
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(123)  # a resumed process starts with another RNG state
    resumed = SharedEngine(TINY, corpus)
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    got += [resumed.train_step(archs).loss for _ in range(2)]
    got.append(resumed.score([NAS, TANH_CELL])[1].metrics["ppl"])
    assert got == want
    assert resumed.totals == straight.totals
    with pytest.raises(ValueError, match="other settings"):
        SharedEngine(TINY.with_(lr=1.0), corpus).load_state_dict(resumed.state_dict())


def test_bad_settings_and_architectures_are_refused(corpus):
    with pytest.raises(ValueError, match="carry_state must be one of"):
        SharedConfig(carry_state="forget")
    with pytest.raises(ValueError, match="score_windows must be >= 1"):
        SharedConfig(score_windows=0)
    engine = SharedEngine(TINY, corpus)
    base4 = RNNCell(base=4, nodes=(("add", "tanh"),) * 7, inject=("add", "tanh"), c_out=6,
                    inject_at=6)  # fmt: skip
    with pytest.raises(ValueError, match="the shared model is base 8"):
        engine.train_step([base4])
    with pytest.raises(ValueError, match="cannot split 8 batch rows between 9"):
        engine.train_step([NAS] * 9)


# ----- per-architecture clipping ---------------------------------------------------------------


def _step_delta(engine: SharedEngine, archs) -> dict[str, torch.Tensor]:
    before = {n: p.detach().clone() for n, p in engine.model.named_parameters()}
    report = engine.train_step(archs)
    assert report.skipped is None and report.masked_rows == [0] * len(archs)
    return {n: p.detach() - before[n] for n, p in engine.model.named_parameters()}


ARCHS3 = [NAS, TANH_CELL, uniform_cell(("add", "sigmoid"), ("elem_mult", "tanh"))]


def test_split_step_without_clipping_equals_the_fused_step(corpus):
    config = TINY.with_(dropout=0.0, lr=1.0, clip=1e9)
    fused = _step_delta(SharedEngine(config, corpus), ARCHS3)
    split = _step_delta(SharedEngine(config.with_(clip_per_arch=True), corpus), ARCHS3)
    for name, delta in fused.items():
        torch.testing.assert_close(split[name], delta, rtol=1e-4, atol=1e-7, msg=name)


def test_split_step_clips_each_architecture_separately(corpus):
    """The update == each architecture's own gradient through the layers and the embedding
    (from its own CellLanguageModel on its rows) clipped to `clip`, weighted by its share of
    the rows, plus the decoder's gradient clipped once."""
    config = TINY.with_(dropout=0.0, lr=1.0, clip=0.05, tie_weights=False, clip_per_arch=True)
    engine = SharedEngine(config, corpus)
    weights = {n: p.detach().clone() for n, p in engine.model.state_dict().items()}
    window = engine.train_data[: config.bptt + 1]
    delta = _step_delta(engine, ARCHS3)

    row_program = rows_per_program(3, config.batch_size)
    want: dict[str, torch.Tensor] = {n: torch.zeros_like(w) for n, w in weights.items()}
    decoder = {"decoder.weight": 0.0, "decoder.bias": 0.0}
    for k, arch in enumerate(ARCHS3):
        rows = (row_program == k).nonzero().flatten()
        model = CellLanguageModel(arch, corpus.vocab_size, config.hidden, dropout=0.0,
                                  tie_weights=False, impl="reference")  # fmt: skip
        model.load_state_dict(weights)
        embedded = []
        model.embedding.register_forward_hook(lambda m, i, out, store=embedded: store.append(out))
        logits, _ = model(window[:-1, rows], model.init_state(rows.numel()))
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), window[1:, rows].reshape(-1)
        )
        params = dict(model.named_parameters())
        names = [n for n in params if not n.startswith("decoder")]
        grads = torch.autograd.grad(loss, [params[n] for n in names] + embedded, retain_graph=True)
        clipped_norm = torch.linalg.vector_norm(
            torch.stack([g.norm() for g in grads[1:]])  # layers and the embedding's output
        )
        factor = min(1.0, config.clip / float(clipped_norm))
        share = rows.numel() / config.batch_size
        for name, grad in zip(names, grads, strict=False):
            want[name] += share * factor * grad
        decoder_grads = torch.autograd.grad(loss, [params[n] for n in decoder])
        for name, grad in zip(decoder, decoder_grads, strict=True):
            decoder[name] = decoder[name] + share * grad
    decoder_norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in decoder.values()]))
    for name, grad in decoder.items():
        want[name] = grad * min(1.0, config.clip / float(decoder_norm))
    for name, d in delta.items():
        torch.testing.assert_close(d, -want[name], rtol=1e-4, atol=1e-7, msg=name)

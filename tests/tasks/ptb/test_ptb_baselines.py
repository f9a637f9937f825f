"""LSTM/GRU baselines train and score through the PTB task's train_model."""

from __future__ import annotations

import math

import pytest

from pynas.children.baseline_rnn import RNNLanguageModel
from pynas.tasks.ptb import PTBConfig, batchify, evaluate_ppl, load_corpus, train_model

CONFIG = PTBConfig(
    hidden=32, batch_size=8, bptt=20, train_tokens=8_000, valid_tokens=1_000, lr=20.0
)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.usefixtures("one_thread")
def test_baseline_trains_with_train_model(ptb_dir, kind):
    corpus = load_corpus(ptb_dir)

    def build() -> RNNLanguageModel:
        return RNNLanguageModel(kind, corpus.vocab_size, CONFIG.hidden, dropout=CONFIG.dropout)

    result, model = train_model(None, CONFIG, corpus, build=build)
    assert result.ok, result.reason
    ppl = result.metrics["ppl"]
    assert math.isfinite(ppl) and ppl < 0.3 * corpus.vocab_size  # uniform guessing: 10,000
    assert result.metrics["params"] == sum(p.numel() for p in model.parameters())
    valid = batchify(corpus.valid[: CONFIG.valid_tokens], CONFIG.eval_batch_size)
    assert evaluate_ppl(model, valid, CONFIG.bptt) == pytest.approx(ppl, rel=1e-6)


def test_train_model_needs_an_architecture_or_a_factory(ptb_dir):
    with pytest.raises(ValueError, match="architecture or a build"):
        train_model(None, CONFIG, load_corpus(ptb_dir))

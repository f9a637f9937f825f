import math

import pytest
import torch

from pynas.arch import NAMED_CELLS
from pynas.children.language_model import CellLanguageModel, hidden_for_param_budget
from pynas.tasks.ptb import PTBConfig, load_corpus, reward_from_ppl, train_child

TINY = PTBConfig(hidden=16, batch_size=8, bptt=10, train_tokens=3000, valid_tokens=1000, lr=5.0)


def test_tiny_child_trains_and_scores(ptb_dir):
    corpus = load_corpus(ptb_dir)
    result = train_child(NAMED_CELLS["nas_cell"], TINY.with_(epochs=2), corpus)
    assert result.ok, result.reason
    ppl = result.metrics["ppl"]
    assert math.isfinite(ppl) and 1 < ppl < corpus.vocab_size * 2
    assert result.reward == pytest.approx(80 / ppl**2)
    assert len(result.metrics["epoch_ppl"]) == 2
    assert result.metrics["ppl"] == min(result.metrics["epoch_ppl"])
    model = CellLanguageModel(NAMED_CELLS["nas_cell"], corpus.vocab_size, 16)
    assert result.metrics["params"] == sum(p.numel() for p in model.parameters())


def test_training_lowers_perplexity_below_uniform(ptb_dir):
    corpus = load_corpus(ptb_dir)
    config = TINY.with_(hidden=32, train_tokens=20000, valid_tokens=2000, lr=20.0, bptt=20)
    result = train_child(NAMED_CELLS["nas_cell"], config, corpus)
    assert result.ok
    assert result.metrics["ppl"] < 0.2 * corpus.vocab_size  # uniform guessing gives 10,000


def test_nan_loss_is_a_recorded_failure(ptb_dir, monkeypatch):
    corpus = load_corpus(ptb_dir)
    original = CellLanguageModel.forward

    def poisoned(self, tokens, state):
        logits, state = original(self, tokens, state)
        return logits * float("nan"), state

    monkeypatch.setattr(CellLanguageModel, "forward", poisoned)
    result = train_child(NAMED_CELLS["nas_cell"], TINY, corpus)
    assert result.status == "failed"
    assert "non-finite training loss" in result.reason
    assert result.reward == 0.0
    assert result.to_dict()["status"] == "failed"


def test_crash_inside_child_is_a_recorded_failure(ptb_dir, monkeypatch):
    corpus = load_corpus(ptb_dir)

    def boom(self, tokens, state):
        raise RuntimeError("simulated out of memory")

    monkeypatch.setattr(CellLanguageModel, "forward", boom)
    result = train_child(NAMED_CELLS["nas_cell"], TINY, corpus)
    assert result.status == "failed" and "simulated out of memory" in result.reason


def test_reward_and_param_budget():
    assert reward_from_ppl(80.0) == pytest.approx(80 / 6400)
    hidden = hidden_for_param_budget(8, 10_000, 5_000_000)
    model_params = lambda h: sum(  # noqa: E731
        p.numel() for p in CellLanguageModel(NAMED_CELLS["nas_cell"], 10_000, h).parameters()
    )
    assert model_params(hidden) <= 5_000_000 < model_params(hidden + 1)


def test_dropout_and_weight_tying_options():
    cell = NAMED_CELLS["nas_cell"]
    tied = CellLanguageModel(cell, 50, 8, tie_weights=True)
    untied = CellLanguageModel(cell, 50, 8, tie_weights=False)
    assert tied.decoder.weight is tied.embedding.weight
    assert untied.decoder.weight is not untied.embedding.weight
    tokens = torch.randint(0, 50, (5, 3))
    logits, state = tied(tokens, tied.init_state(3))
    assert logits.shape == (5, 3, 50) and len(state) == 2

"""Additive task hooks retrain relies on: train_model, a build factory, PTB weight decay."""

import pytest
import torch

import pynas.export as export
from pynas.arch import NAMED_CELLS, NAMED_CONV_NETS, ConvNet
from pynas.tasks import cifar10, ptb
from pynas.tasks.ptb.corpus import batchify

CELL = NAMED_CELLS["nas_cell"]
TINY = ptb.PTBConfig(
    hidden=8, epochs=3, batch_size=4, bptt=10, train_tokens=1200, valid_tokens=400,
    eval_batch_size=4, dropout=0.0,
)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


@pytest.fixture(scope="module")
def corpus(ptb_dir):
    return ptb.load_corpus(ptb_dir)


def without_timing(metrics):
    return {k: v for k, v in metrics.items() if k not in ("seconds", "train_tokens_per_second")}


def test_train_model_returns_the_best_validation_epoch(corpus):
    result, model = ptb.train_model(CELL, TINY, corpus)
    epoch_ppl = result.metrics["epoch_ppl"]
    assert result.ok and len(epoch_ppl) == 3
    assert min(epoch_ppl) != epoch_ppl[-1]  # this setting gets worse after epoch 1
    valid = batchify(corpus.valid[: TINY.valid_tokens], TINY.eval_batch_size)
    assert ptb.evaluate_ppl(model, valid, TINY.bptt) == result.metrics["ppl"] == min(epoch_ppl)


def test_train_child_is_unchanged_and_matches_train_model(corpus):
    config = TINY.with_(epochs=1)
    child = ptb.train_child(CELL, config, corpus)
    result, _ = ptb.train_model(CELL, config, corpus)
    assert child.reward == result.reward
    assert without_timing(child.metrics) == without_timing(result.metrics)


def test_build_factory_gets_the_same_initial_weights(corpus):
    config = TINY.with_(epochs=1)
    options = dict(vocab_size=corpus.vocab_size, hidden_size=config.hidden,
                   num_layers=config.num_layers, dropout=config.dropout)  # fmt: skip
    result, model = ptb.train_model(
        CELL, config, corpus, build=lambda: export.build_model(CELL, "ptb", **options)
    )
    assert result.metrics["ppl"] == ptb.train_child(CELL, config, corpus).metrics["ppl"]
    assert hasattr(model, "_pynas_spec")  # the built module itself was trained: save_model works


def test_weight_decay_is_used_and_defaults_to_zero(corpus):
    assert ptb.PTBConfig().weight_decay == 0.0
    config = TINY.with_(epochs=1)
    plain = ptb.train_child(CELL, config, corpus).metrics["ppl"]
    decayed = ptb.train_child(CELL, config.with_(weight_decay=1e-3), corpus).metrics["ppl"]
    assert plain != decayed


def test_failed_training_returns_no_model(corpus):
    result, model = ptb.train_model(CELL, TINY.with_(lr=1e30, clip=1e30), corpus)
    assert not result.ok and model is None


def test_cifar10_train_model_returns_the_trained_child(cifar10_dir):
    data = cifar10.load_cifar10(cifar10_dir, "small", 50)
    net = ConvNet.from_dict({"layers": NAMED_CONV_NETS["skip15"].to_dict()["layers"][:2]})
    config = cifar10.CIFAR10Config(epochs=1, batch_size=32, train_images=64, valid_images=50)
    result, model = cifar10.train_model(
        net, config, data, build=lambda: export.build_model(net, "cifar10", bn_eps=1e-3)
    )
    assert result.ok and isinstance(model, torch.nn.Module) and not model.training
    acc = cifar10.evaluate_accuracy(model, data.valid.head(50))
    assert acc == result.metrics["epoch_accuracy"][-1]
    assert cifar10.train_child(net, config, data).metrics["epoch_accuracy"] != []

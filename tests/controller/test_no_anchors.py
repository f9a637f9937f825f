"""A CNN space without anchors (each layer reads the previous one) under REINFORCE."""

import json

import pytest
import torch

from pynas.controller import Controller, ControllerConfig
from pynas.search import Budget, RunJournal, Search
from pynas.spaces import DecisionSpace
from pynas.spaces.conv_space import ConvNetSpace
from pynas.strategies import Reinforce
from pynas.tasks.registry import make_task

SMALL = {"fh": (1, 3), "fw": (3, 5), "filters": (24, 36), "stride": (1,)}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_controller_has_no_attention_and_emits_only_layer_choices():
    space = ConvNetSpace(4, anchors=False)
    c = Controller(space, generator=torch.Generator().manual_seed(0))
    names = [n for n, _ in c.named_parameters()]
    assert not any(n.startswith(("w_prev", "w_curr", "v.")) for n in names)
    out = c.sample(5, generator=torch.Generator().manual_seed(1))
    assert out.indices.shape == (5, len(space)) == (5, 16)
    archs = [space.to_arch(space.decode(r.tolist())) for r in out.indices]
    for arch in archs:
        assert [layer.inputs for layer in arch.layers] == [(), (0,), (1,), (2,)]
    torch.testing.assert_close(c.score(out.indices).log_prob, out.log_prob, rtol=0, atol=1e-5)


def test_it_is_the_plain_lstm_controller_over_the_same_decisions():
    """Without anchors the CNN controller is exactly the plain controller (same parameters)."""
    space = ConvNetSpace(3, SMALL, anchors=False)
    anchor = Controller(space, generator=torch.Generator().manual_seed(0))
    plain = Controller(DecisionSpace(space.decisions), ControllerConfig())
    plain.start.data.copy_(anchor.start.data)
    plain.lstm.load_state_dict(anchor.lstm.state_dict())
    for i, head in enumerate(plain.head_names):
        plain.heads[i].load_state_dict(anchor.heads[head].state_dict())
        plain.embeddings[i].load_state_dict(anchor.embeddings[head].state_dict())
    rows = anchor.sample(8, generator=torch.Generator().manual_seed(2)).indices
    a, p = anchor.score(rows), plain.score(rows)
    torch.testing.assert_close(a.log_prob, p.log_prob, rtol=0, atol=1e-6)
    torch.testing.assert_close(a.entropy, p.entropy, rtol=0, atol=1e-6)


def test_probabilities_of_all_architectures_sum_to_one():
    space = ConvNetSpace(2, {"fh": (1, 3), "fw": (3,), "filters": (24, 36, 48), "stride": (1,)},
                         anchors=False)  # fmt: skip
    c = Controller(space, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(10)
    rows = torch.tensor([[a, b, x, y] for a in range(2) for b in range(3)
                         for x in range(2) for y in range(3)])  # fmt: skip
    probs = c.score(rows).log_prob.exp()
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0))
    assert probs.max() > 2 * probs.min()


def test_reinforce_asks_tells_learns_and_round_trips_its_state():
    space = ConvNetSpace(3, anchors=False)
    strategy = Reinforce(space, "paper", batch_size=4, seed=0, lr=0.05)
    before = {k: v.clone() for k, v in strategy.controller.state_dict().items()}
    for _ in range(3):
        archs = strategy.ask(4)
        assert all(a.depth == 3 and a.layers[2].inputs == (1,) for a in archs)
        strategy.tell(archs, [a.layers[0].fh / 7 for a in archs])
    assert strategy.version == 3
    assert any(not torch.equal(v, before[k]) for k, v in strategy.controller.state_dict().items())

    space.set_depth(5)  # progressive depth: the same controller serves the deeper space
    deeper = strategy.ask(4)
    assert all(a.depth == 5 for a in deeper)
    state = strategy.state_dict()
    twin = Reinforce(ConvNetSpace(5, anchors=False), "paper", batch_size=4, seed=99, lr=0.05)
    twin.load_state_dict(state)
    assert [a.to_json() for a in twin.ask(4)] == [a.to_json() for a in strategy.ask(4)]
    lp, _ = strategy.log_prob(deeper)
    lp_twin, _ = twin.log_prob(deeper)
    torch.testing.assert_close(lp, lp_twin)
    strategy.tell(deeper, [0.1, 0.2, 0.3, 0.4])
    assert strategy.version == 4


def test_space_refuses_skip_connections_it_cannot_express():
    from pynas.arch import ConvNet

    space = ConvNetSpace(2, anchors=False)
    arch = ConvNet.from_dict({"kind": "conv_net", "layers": [
        {"fh": 3, "fw": 3, "filters": 24, "stride": 1, "inputs": []},
        {"fh": 3, "fw": 3, "filters": 24, "stride": 1, "inputs": []},
    ]})  # fmt: skip
    with pytest.raises(ValueError, match="skip connections are not part of this space"):
        space.from_arch(arch)


def test_short_cifar10_search_without_anchors(cifar10_dir, tmp_path):
    child = {"start_depth": 1, "depth_every": 4, "depth_step": 2, "epochs": 1, "batch_size": 32,
             "train_images": 64, "valid_images": 50, "anchors": False}  # fmt: skip
    task = make_task("cifar10", child, 0, str(cifar10_dir))
    assert task.space.anchors is False
    budget = Budget(children=8, batch_size=4, grads_per_update=1, child=child)
    strategy = Reinforce(task.space, "paper", batch_size=4, seed=0)
    run = RunJournal.create(tmp_path / "run", {})
    search = Search(run, task, strategy, budget)
    search.restore()
    summary = search.run_all()
    records = [json.loads(line) for line in (tmp_path / "run" / "children.jsonl").open()]
    assert [len(r["arch"]["layers"]) for r in records] == [1] * 4 + [3] * 4
    assert all(r["status"] == "ok" for r in records) and summary["failed"] == 0
    for r in records:
        assert [layer["inputs"] for layer in r["arch"]["layers"]] == [
            [i - 1] if i else [] for i in range(len(r["arch"]["layers"]))
        ]
    assert strategy.version == 2
    # the checkpoint restores into a fresh strategy that asks the same next batch
    resumed = Reinforce(make_task("cifar10", child, 0, str(cifar10_dir)).space, "paper",
                        batch_size=4, seed=5)  # fmt: skip
    resumed.space.set_depth(3)
    resumed.load_state_dict(RunJournal(tmp_path / "run").load_checkpoint()["strategy"])
    task.space.set_depth(3)
    assert [a.to_json() for a in resumed.ask(4)] == [a.to_json() for a in strategy.ask(4)]

"""The controller on a CNN space: anchor attention, log-probabilities, depth growth."""

import itertools

import pytest
import torch

from pynas.controller import Controller, ControllerConfig, compute_gradient, reinforce_loss
from pynas.spaces.conv_space import PAPER_CHOICES, ConvNetSpace

ONLY_ANCHORS = {"fh": (3,), "fw": (3,), "filters": (24,), "stride": (1,)}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_shape_and_init_follow_spec():
    c = Controller(ConvNetSpace(4), generator=torch.Generator().manual_seed(0))
    assert c.lstm.num_layers == 2 and c.lstm.hidden_size == 35
    assert list(c.heads) == ["fh", "fw", "filters", "stride"]
    assert c.w_prev.weight.shape == c.w_curr.weight.shape == (35, 35)
    assert all(p.abs().max() <= 0.08 for p in c.parameters())
    deeper = Controller(ConvNetSpace(12))
    assert sum(p.numel() for p in c.parameters()) == sum(p.numel() for p in deeper.parameters())


@pytest.mark.parametrize(
    "config", [ControllerConfig(), ControllerConfig(temperature=5.0, tanh_constant=2.5)]
)
def test_recomputed_log_prob_equals_sampled(config):
    space = ConvNetSpace(5)
    c = Controller(space, config, generator=torch.Generator().manual_seed(1))
    sampled = c.sample(6, generator=torch.Generator().manual_seed(2))
    assert sampled.indices.shape == (6, len(space))
    again = c.score(sampled.indices)
    torch.testing.assert_close(again.log_prob, sampled.log_prob, rtol=0, atol=1e-5)
    torch.testing.assert_close(again.entropy, sampled.entropy, rtol=0, atol=1e-5)
    single = c.score(sampled.indices[2:3])
    torch.testing.assert_close(single.log_prob, sampled.log_prob[2:3], rtol=0, atol=1e-5)


def test_anchor_probability_is_the_attention_formula():
    space = ConvNetSpace(2, ONLY_ANCHORS)
    assert space.names == ("layer1.in0",)
    c = Controller(space, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(10)  # make the probability clearly different from 1/2
    out_on = c.score(torch.tensor([[1]]))
    out_off = c.score(torch.tensor([[0]]))
    # By hand: anchor step of layer 0 reads the start input, layer 1 reads zeros (no inputs).
    with torch.no_grad():
        h, state = c.lstm(c.start.unsqueeze(0))
        h0 = h[0]
        h, _ = c.lstm(torch.zeros_like(c.start).unsqueeze(0), state)
        h1 = h[0]
        p = torch.sigmoid(c.v(torch.tanh(c.w_prev(h0) + c.w_curr(h1)))).squeeze()
    torch.testing.assert_close(out_on.log_prob.exp().squeeze(), p)
    torch.testing.assert_close(out_off.log_prob.exp().squeeze(), 1 - p)
    entropy = -(p * p.log() + (1 - p) * (1 - p).log())
    torch.testing.assert_close(out_on.entropy.squeeze(), entropy)
    assert abs(float(p) - 0.5) > 0.01


def test_probabilities_of_all_architectures_sum_to_one():
    choices = {**ONLY_ANCHORS, "filters": (24, 36)}
    space = ConvNetSpace(3, choices)
    c = Controller(space, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(8)
    rows = torch.tensor(list(itertools.product((0, 1), repeat=len(space))))
    probs = c.score(rows).log_prob.exp()
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0))
    assert probs.max() > 2 * probs.min()  # not uniform: the check above is not trivial


def test_depth_growth_keeps_parameters_and_scores_old_rows():
    space = ConvNetSpace(2)
    c = Controller(space, generator=torch.Generator().manual_seed(0))
    old = c.sample(3, generator=torch.Generator().manual_seed(1))
    space.set_depth(4)
    assert c.num_steps == len(space) == 22
    new = c.sample(2, generator=torch.Generator().manual_seed(2))
    assert new.indices.shape == (2, 22)
    torch.testing.assert_close(c.score(old.indices).log_prob, old.log_prob, rtol=0, atol=1e-6)
    archs = [space.to_arch(space.decode(r.tolist())) for r in new.indices]
    assert all(a.depth == 4 for a in archs)
    with pytest.raises(Exception, match="match no depth"):
        c.score(torch.zeros(1, 5, dtype=torch.long))


def test_gradient_reaches_the_attention():
    space = ConvNetSpace(4)
    c = Controller(space, generator=torch.Generator().manual_seed(0))
    idx = c.sample(4, generator=torch.Generator().manual_seed(1)).indices
    grads = compute_gradient(
        c, dict(c.named_parameters()), idx, torch.tensor([0.1, 0.9, 0.3, 0.5]), 0.4
    )
    for name in ("w_prev.weight", "w_curr.weight", "v.weight", "heads.fh.weight", "start"):
        assert grads[name].abs().sum() > 0, name


def test_reinforce_learns_to_connect_a_skip():
    torch.manual_seed(0)
    space = ConvNetSpace(3, {**PAPER_CHOICES})
    c = Controller(space, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(c.parameters(), lr=0.02)
    gen = torch.Generator().manual_seed(1)
    col = space.names.index("layer2.in0")

    def skip_rate():
        return c.sample(200, generator=torch.Generator().manual_seed(9)).indices[:, col]

    before = skip_rate().float().mean()
    for _ in range(40):
        rows = c.sample(16, generator=gen).indices
        rewards = rows[:, col].float()  # reward 1 if layer 0 feeds layer 2
        out = c.score(rows)
        opt.zero_grad()
        reinforce_loss(out.log_prob, out.entropy, rewards, float(rewards.mean())).backward()
        opt.step()
    after = skip_rate().float().mean()
    assert 0.3 < before < 0.7 and after > 0.85


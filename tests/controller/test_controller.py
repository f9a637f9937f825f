import pytest
import torch

from pynas.controller import Controller, ControllerConfig, compute_gradient, reinforce_loss
from pynas.controller.threads import single_thread
from pynas.spaces import Decision, DecisionSpace, RNNCellSpace


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():  # tiny matrices: threads only add contention on a loaded machine
        yield


def test_shape_and_init_follow_spec():
    space = RNNCellSpace(8)
    c = Controller(space, generator=torch.Generator().manual_seed(0))
    assert c.lstm.num_layers == 2 and c.lstm.hidden_size == 35
    assert len(c.heads) == len(space)  # one softmax head per decision
    assert [h.out_features for h in c.heads][:2] == [2, 4]
    for p in c.parameters():
        assert p.abs().max() <= 0.08
    assert c.start.requires_grad  # learned start input


def test_shared_heads():
    space = DecisionSpace([Decision("a", (1, 2, 3), head="k"), Decision("b", (1, 2, 3), head="k")])
    c = Controller(space)
    assert len(c.heads) == 1 and c.head_of == (0, 0)


@pytest.mark.parametrize(
    "config", [ControllerConfig(), ControllerConfig(temperature=5.0, tanh_constant=2.5)]
)
def test_recomputed_log_prob_equals_sampled(config):
    space = RNNCellSpace(8)
    c = Controller(space, config, generator=torch.Generator().manual_seed(1))
    sampled = c.sample(6, generator=torch.Generator().manual_seed(2))
    again = c.score(sampled.indices)
    torch.testing.assert_close(again.log_prob, sampled.log_prob, rtol=0, atol=1e-6)
    torch.testing.assert_close(again.entropy, sampled.entropy, rtol=0, atol=1e-6)
    single = c.score(sampled.indices[3:4])
    torch.testing.assert_close(single.log_prob, sampled.log_prob[3:4], rtol=0, atol=1e-5)
    assert (sampled.log_prob < 0).all() and (sampled.entropy > 0).all()


def test_log_prob_is_sum_of_per_decision_log_probs():
    # A space of one decision: log P must be log softmax of the head's logits.
    space = DecisionSpace({"only": ["a", "b", "c"]})
    c = Controller(space)
    out = c.score(torch.tensor([[0], [1], [2]]))
    assert torch.allclose(out.log_prob.exp().sum(), torch.tensor(1.0), atol=1e-6)
    p = out.log_prob.exp()
    assert torch.allclose(out.entropy, -(p * p.log()).sum().expand(3), atol=1e-6)


def test_sampling_is_seeded_and_follows_the_generator():
    c = Controller(RNNCellSpace(4))
    a = c.sample(4, generator=torch.Generator().manual_seed(5)).indices
    b = c.sample(4, generator=torch.Generator().manual_seed(5)).indices
    d = c.sample(4, generator=torch.Generator().manual_seed(6)).indices
    assert torch.equal(a, b) and not torch.equal(a, d)


def test_temperature_and_tanh_flatten_the_distribution():
    space = RNNCellSpace(4)
    plain = Controller(space, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in plain.parameters():
            p.mul_(20)  # sharp logits
    squashed = Controller(space, ControllerConfig(temperature=5.0, tanh_constant=2.5))
    squashed.load_state_dict(plain.state_dict())
    idx = plain.sample(16, generator=torch.Generator().manual_seed(0)).indices
    assert squashed.score(idx).entropy.mean() > plain.score(idx).entropy.mean()


def test_compute_gradient_is_pure_and_matches_autograd():
    space = RNNCellSpace(4)
    c = Controller(space, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in c.state_dict().items()}
    idx = c.sample(5, generator=torch.Generator().manual_seed(1)).indices
    rewards = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.0])
    grads = compute_gradient(c, dict(c.named_parameters()), idx, rewards, 0.3, 1e-3)
    for k, v in c.state_dict().items():
        assert torch.equal(v, before[k])
    out = c.score(idx)
    reinforce_loss(out.log_prob, out.entropy, rewards, 0.3, 1e-3).backward()
    for name, p in c.named_parameters():
        expected = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(grads[name], expected)
    # zero advantage and no entropy bonus: no gradient at all
    zero = compute_gradient(c, dict(c.named_parameters()), idx, torch.full((5,), 0.3), 0.3)
    assert all(float(g.abs().max()) == 0.0 for g in zero.values())

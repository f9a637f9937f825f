import pytest
import torch

from pynas.controller import (
    Controller,
    ControllerConfig,
    clipped_surrogate_loss,
    compute_gradient,
    reinforce_loss,
)
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
    again = c.score(sampled.indices)  # the fused path: float32 sums of ~60 terms, reordered
    torch.testing.assert_close(again.log_prob, sampled.log_prob, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(again.entropy, sampled.entropy, rtol=1e-6, atol=1e-5)
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


SPACES = {
    "rnn cell (shared heads)": lambda: RNNCellSpace(8),
    "34 decisions of 2..5 choices": lambda: DecisionSpace(
        {f"d{i}": list(range(2 + i % 4)) for i in range(34)}
    ),
    "one decision": lambda: DecisionSpace({"only": ["a", "b", "c"]}),
}


@pytest.mark.parametrize("name", sorted(SPACES))
@pytest.mark.parametrize(
    "config", [ControllerConfig(), ControllerConfig(temperature=5.0, tanh_constant=2.5)]
)
def test_fused_scoring_equals_the_stepwise_reference(name, config):
    space = SPACES[name]()
    c = Controller(space, config, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(10)  # sharp, unequal logits: a wrong head or input would show
    c64 = Controller(space, config).double()
    c64.load_state_dict(c.state_dict())
    idx = c.sample(9, generator=torch.Generator().manual_seed(4)).indices
    for model, tol in ((c, 1e-4), (c64, 1e-10)):
        fused, reference = model(indices=idx), model.forward_stepwise(idx)
        assert torch.equal(fused.indices, idx)
        torch.testing.assert_close(fused.log_prob, reference.log_prob, rtol=0, atol=tol)
        torch.testing.assert_close(fused.entropy, reference.entropy, rtol=0, atol=tol)
        params = list(model.parameters())
        g_fused = torch.autograd.grad(
            (fused.log_prob * torch.arange(9.0).to(fused.log_prob)).sum() + fused.entropy.sum(),
            params,
            allow_unused=True,
        )
        g_ref = torch.autograd.grad(
            (reference.log_prob * torch.arange(9.0).to(fused.log_prob)).sum()
            + reference.entropy.sum(),
            params,
            allow_unused=True,
        )
        for a, b in zip(g_fused, g_ref, strict=True):
            if a is None or b is None:  # e.g. the last decision's embedding: never an input
                assert a is None or float(a.abs().max()) == 0.0
                assert b is None or float(b.abs().max()) == 0.0
                continue
            torch.testing.assert_close(a, b, rtol=0, atol=tol * 10)


def test_fused_scoring_gradcheck_float64():
    space = DecisionSpace({"a": [0, 1, 2], "b": [0, 1], "c": [0, 1, 2, 3]})
    c = Controller(space, ControllerConfig(hidden=4, layers=2)).double()
    idx = torch.tensor([[0, 1, 3], [2, 0, 1], [1, 1, 0]])
    names = [n for n, _ in c.named_parameters()]
    from torch.func import functional_call

    def f(*tensors):
        out = functional_call(c, dict(zip(names, tensors, strict=True)), (), {"indices": idx})
        return out.log_prob, out.entropy

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in c.parameters())
    assert torch.autograd.gradcheck(f, inputs)


def test_clipped_surrogate_is_reinforce_at_ratio_one_and_stops_past_the_clip():
    log_prob = torch.tensor([-1.0, -2.0, -3.0], requires_grad=True)
    advantage = torch.tensor([1.0, -1.0, 0.5])
    (g_clip,) = torch.autograd.grad(
        clipped_surrogate_loss(log_prob, log_prob.detach(), advantage, 0.2), log_prob
    )
    (g_plain,) = torch.autograd.grad(
        reinforce_loss(log_prob, torch.zeros(3), advantage, 0.0), log_prob
    )
    torch.testing.assert_close(g_clip, g_plain)
    # probabilities already moved past 1 ± ε in the advantage's direction: no more push;
    # moved against it: the unclipped term still pulls back
    old = log_prob.detach() - torch.log(torch.tensor([1.5, 1.5, 0.5]))  # ratios 1.5, 1.5, 0.5
    (g,) = torch.autograd.grad(clipped_surrogate_loss(log_prob, old, advantage, 0.2), log_prob)
    assert g[0] == 0.0  # A > 0, ratio 1.5 > 1 + ε: clipped
    assert g[1] > 0.0  # A < 0, ratio 1.5: the unclipped term pushes the probability down
    assert g[2] < 0.0  # A > 0, ratio 0.5 < 1 - ε: the unclipped term pulls it back up


def test_compute_gradient_with_clip_and_elite_matches_autograd():
    space = RNNCellSpace(4)
    c = Controller(space, generator=torch.Generator().manual_seed(0))
    idx = c.sample(5, generator=torch.Generator().manual_seed(1)).indices
    elite = c.sample(3, generator=torch.Generator().manual_seed(2)).indices
    advantage = torch.tensor([0.4, -0.2, 0.1, -0.5, 0.3])
    old = c.score(idx).log_prob.detach() + torch.tensor([0.3, -0.3, 0.0, 0.1, -0.1])
    grads = compute_gradient(
        c, dict(c.named_parameters()), idx, advantage, 0.0, 1e-3,
        old_log_prob=old, clip=0.2, elite=elite, elite_weight=0.7,
    )  # fmt: skip
    out, top = c.score(idx), c.score(elite)
    loss = clipped_surrogate_loss(out.log_prob, old, advantage, 0.2)
    loss = loss - 1e-3 * out.entropy.mean() - 0.7 * top.log_prob.mean()
    loss.backward()
    for name, p in c.named_parameters():
        expected = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(grads[name], expected)


@pytest.mark.parametrize("name", sorted(SPACES))
@pytest.mark.parametrize(
    "config", [ControllerConfig(), ControllerConfig(temperature=5.0, tanh_constant=2.5)]
)
def test_lean_sampling_draws_what_the_stepwise_reference_draws(name, config):
    space = SPACES[name]()
    c = Controller(space, config, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(5)
    for seed in range(3):
        fast = c.sample(32, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            reference = c.forward_stepwise(batch=32, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(fast.indices, reference.indices)
        torch.testing.assert_close(fast.log_prob, reference.log_prob, rtol=1e-6, atol=1e-5)
        torch.testing.assert_close(fast.entropy, reference.entropy, rtol=1e-6, atol=1e-5)

"""Parameter-server shards without Ray: slicing, accumulation, exactly-once, Adam equivalence."""

import pytest
import torch

from pynas.search.distributed.server import (
    ParameterShard,
    merge_adam_states,
    merge_params,
    split_names,
)
from pynas.spaces import DecisionSpace
from pynas.strategies import Reinforce

SPACE = DecisionSpace({"a": [0, 1, 2], "b": ["x", "y"], "c": [1, 2, 3, 4]})


def strategy(**kw):
    return Reinforce(SPACE, "paper", batch_size=2, seed=3, lr=0.05, **kw)


def shards_for(reinforce, servers, g):
    named = dict(reinforce.controller.named_parameters())
    slices = split_names({n: p.numel() for n, p in named.items()}, servers)
    s = reinforce.settings
    shards = [
        ParameterShard(i, {n: named[n] for n in names}, s.lr, s.adam_betas, g,
                       s.baseline_decay if i == 0 else None)
        for i, names in enumerate(slices)
    ]  # fmt: skip
    return shards, slices


def fake_grad(reinforce, seed):
    gen = torch.Generator().manual_seed(seed)
    return {
        n: torch.randn(p.shape, generator=gen) for n, p in reinforce.controller.named_parameters()
    }


def push(shards, slices, gid, grad, version=0, rewards=None):
    return [
        sh.push(
            gid, version, {n: grad[n] for n in names}, {"replica": 0}, rewards if i == 0 else None
        )
        for i, (sh, names) in enumerate(zip(shards, slices, strict=True))
    ]


def test_split_names_is_a_balanced_partition():
    sizes = {"a": 100, "b": 60, "c": 50, "d": 10}
    slices = split_names(sizes, 2)
    assert sorted(n for s in slices for n in s) == sorted(sizes)
    loads = [sum(sizes[n] for n in s) for s in slices]
    assert max(loads) - min(loads) <= 10
    assert all(s == sorted(s, key=list(sizes).index) for s in slices)  # declaration order
    with pytest.raises(ValueError, match="at most 4"):
        split_names(sizes, 5)


def test_g_gradients_are_averaged_and_applied_with_adam_like_the_local_strategy():
    local, remote = strategy(), strategy()
    shards, slices = shards_for(remote, servers=3, g=2)
    grads = [fake_grad(local, k) for k in range(4)]
    for k, grad in enumerate(grads):
        assert push(shards, slices, k, grad, version=k // 2) == [True] * 3
        assert all(sh.version == (k + 1) // 2 for sh in shards)
    # the local strategy's own apply(): mean of g gradients, one Adam step per g
    from pynas.strategies.reinforce import Gradient

    local.apply([Gradient(0, grads[0], 2), Gradient(0, grads[1], 2)])
    local.apply([Gradient(1, grads[2], 2), Gradient(1, grads[3], 2)])
    merged = merge_params([sh.snapshot() for sh in shards])
    for name, p in local.controller.named_parameters():
        torch.testing.assert_close(merged[name], p.detach(), rtol=0, atol=1e-7)
    applied = [a["id"] for a in shards[0].applied]
    assert applied == [0, 1, 2, 3]
    assert [a["version_applied"] - a["version_computed"] for a in shards[0].applied] == [0] * 4


def test_a_repeated_gradient_id_is_ignored():
    remote = strategy()
    shards, slices = shards_for(remote, servers=2, g=1)
    grad = fake_grad(remote, 0)
    assert push(shards, slices, 7, grad) == [True, True]
    before = merge_params([sh.snapshot() for sh in shards])
    assert push(shards, slices, 7, fake_grad(remote, 1)) == [False, False]
    after = merge_params([sh.snapshot() for sh in shards])
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert [a["id"] for sh in shards for a in sh.applied] == [7, 7]


def test_staleness_is_the_version_difference():
    remote = strategy()
    shards, slices = shards_for(remote, servers=1, g=1)
    for k in range(3):
        push(shards, slices, k, fake_grad(remote, k), version=0)  # all computed at version 0
    assert [(a["version_computed"], a["version_applied"]) for a in shards[0].applied] == [
        (0, 0), (0, 1), (0, 2)
    ]  # fmt: skip


def test_baseline_is_an_ema_kept_by_the_baseline_shard_only():
    remote = strategy()
    shards, slices = shards_for(remote, servers=2, g=10)
    decay = remote.settings.baseline_decay
    push(shards, slices, 0, fake_grad(remote, 0), rewards=[1.0, 3.0])
    assert shards[0].baseline == pytest.approx(decay * 1.0 + (1 - decay) * 3.0)
    assert shards[1].baseline is None
    assert shards[0].pull()[2] == shards[0].baseline


def test_snapshot_restores_a_shard_exactly_including_buffer_and_history():
    remote = strategy()
    shards, slices = shards_for(remote, servers=2, g=2)
    for k in range(3):  # one update applied, one gradient buffered
        push(shards, slices, k, fake_grad(remote, k), rewards=[0.5])
    snaps = [sh.snapshot() for sh in shards]
    fresh, _ = shards_for(strategy(), servers=2, g=2)
    for sh, snap in zip(fresh, snaps, strict=True):
        sh.load(snap)
    for group in (shards, fresh):
        push(group, slices, 3, fake_grad(remote, 3), rewards=[0.25])
    for a, b in zip(shards, fresh, strict=True):
        sa, sb = a.snapshot(), b.snapshot()
        assert sa["version"] == sb["version"] == 2 and sa["received"] == sb["received"]
        assert sa["applied"] == sb["applied"] and sa["baseline"] == sb["baseline"]
        assert all(torch.equal(sa["params"][n], sb["params"][n]) for n in sa["params"])


def test_merged_state_loads_into_reinforce():
    remote = strategy()
    shards, slices = shards_for(remote, servers=2, g=1)
    push(shards, slices, 0, fake_grad(remote, 0))
    snaps = [sh.snapshot() for sh in shards]
    names = [n for n, _ in remote.controller.named_parameters()]
    state = remote.state_dict()
    state["controller"] = merge_params(snaps)
    state["optimizer"] = merge_adam_states(snaps, names)
    other = strategy()
    other.load_state_dict(state)
    opt = other.optimizer.state_dict()["state"]
    assert sorted(opt) == list(range(len(names)))
    for i, name in enumerate(names):
        s = next(sh for sh in shards if name in sh.params)
        local = list(s.params).index(name)
        assert torch.equal(opt[i]["exp_avg"], s.optimizer.state_dict()["state"][local]["exp_avg"])

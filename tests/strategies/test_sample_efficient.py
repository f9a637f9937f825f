"""The default REINFORCE preset's machinery, the PPO strategy, and failures told as None."""

import math

import pytest
import torch

from pynas.spaces import DecisionSpace
from pynas.strategies import (
    PPO,
    PRESETS,
    RandomSearch,
    RegularizedEvolution,
    Reinforce,
    ReinforceSettings,
    preset,
)

SPACE = DecisionSpace({f"d{i}": ["a", "b", "c", "d"] for i in range(5)})
TARGET = {"d0": "a", "d1": "b", "d2": "c", "d3": "d", "d4": "a"}


def reward(arch):
    return sum(arch[k] == TARGET[k] for k in TARGET) / len(TARGET)


def failing_reward(arch):  # "invalid" architectures: d0 == "d"
    return None if arch["d0"] == "d" else reward(arch)


def run(strategy, batches, m=8, objective=reward):
    for _ in range(batches):
        archs = strategy.ask(m)
        strategy.tell(archs, [objective(a) for a in archs])


def p_target(strategy):
    return float(strategy.log_prob([TARGET])[0][0].exp())


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# ----- the default preset -------------------------------------------------------------------------
def test_default_is_the_default_preset_and_plain_data():
    s = Reinforce(SPACE, seed=0)
    assert s.settings == PRESETS["default"] == preset("default", "generic")
    assert s.settings.novel and s.settings.epochs > 1 and s.settings.elite_size > 0
    with pytest.raises(ValueError, match="advantage"):
        ReinforceSettings(advantage="median")
    with pytest.raises(ValueError, match="epochs"):
        ReinforceSettings(epochs=0)


@pytest.mark.parametrize(
    "make", [lambda: Reinforce(SPACE, seed=0), lambda: PPO(SPACE, seed=0, lr=0.01)]
)
def test_learning_raises_the_probability_of_the_target(make):
    s = make()
    before = p_target(s)
    run(s, 25)
    after = p_target(s)
    assert before < 0.002  # ~ 1/4^5
    assert after > 50 * before
    # the policy's samples are much closer to the target than chance (1/4); not s.ask(): a
    # novel ask avoids what has been evaluated, the best included
    rows = s.controller.sample(64, generator=torch.Generator().manual_seed(0)).indices
    assert sum(reward(SPACE.decode(r.tolist())) for r in rows) / 64 > 0.5


def test_novel_asks_never_repeat_until_the_space_is_exhausted():
    space = DecisionSpace({"a": [0, 1, 2], "b": [0, 1, 2], "c": [0, 1]})  # 18 architectures
    s = Reinforce(space, batch_size=4, seed=1)
    seen = []
    for _ in range(4):
        archs = s.ask(4)
        s.tell(archs, [a["a"] + a["b"] + a["c"] for a in archs])
        seen += [tuple(a.values()) for a in archs]
    assert len(set(seen)) == len(seen) == 16
    last = s.ask(4)  # two new ones exist: found (by hotter sampling if needed), then repeats
    assert {tuple(a.values()) for a in last} >= set(
        tuple(x) for x in ([i, j, k] for i in range(3) for j in range(3) for k in range(2))
    ) - set(seen)
    assert len(last) == 4


def test_told_architectures_count_as_seen():
    s = Reinforce(SPACE, batch_size=2, seed=0)
    s.tell([TARGET], [1.0])  # told without being asked (e.g. a known good architecture)
    assert TARGET not in s.ask(200)


def test_rank_advantages_ties_and_failures():
    s = Reinforce(SPACE, batch_size=4, seed=0, advantage="batch_rank")
    adv = s._advantages([0.2, None, 0.9, 0.2])
    assert adv.tolist() == pytest.approx([-0.5 + 1.5 / 3, -0.5, 0.5, -0.5 + 1.5 / 3])
    h = Reinforce(SPACE, batch_size=4, seed=0, advantage="history_rank")
    h.tell([TARGET] * 4, [0.1, 0.2, 0.3, 0.4])  # history: 0.1 0.2 0.3 0.4
    adv = h._advantages([0.05, None, 0.5, 0.25])  # among 0.05 0.1 0.2 0.25 0.3 0.4 0.5
    assert adv.tolist() == pytest.approx([-0.5, -0.5, 0.5, 3 / 6 - 0.5])
    b = Reinforce(SPACE, "paper", failure_reward=-1.0)
    b.baseline = 0.5
    assert b._advantages([1.0, None]).tolist() == pytest.approx([0.5, -1.5])
    st = Reinforce(SPACE, "ppo")
    adv = st._advantages([1.0, 2.0, 3.0, None])  # failure_reward 0.0
    assert float(adv.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(adv.std()) == pytest.approx(1.0)
    assert adv.argmin() == 3


def test_elite_is_the_best_distinct_successes():
    s = Reinforce(SPACE, batch_size=4, seed=0, elite_size=2)
    archs = s.ask(4)
    s.tell(archs, [0.5, None, 0.9, 0.1])
    assert [r for r, _ in s._elite] == [0.9, 0.5]
    assert s._elite[0][1] == tuple(SPACE.encode(archs[2]))


def test_the_elite_is_imitated():
    # nothing but imitation: a zero advantage for everything, the elite's probability rises
    s = Reinforce(SPACE, batch_size=4, seed=0, advantage="batch_rank", elite_size=1, lr=0.05)
    s.tell([TARGET], [1.0])
    before = p_target(s)
    for _ in range(5):
        archs = s.ask(4)
        s.tell(archs, [0.0] * 4)
    assert p_target(s) > 10 * before


def test_epochs_take_one_step_each_and_clip():
    s = Reinforce(SPACE, batch_size=4, seed=0, epochs=3)
    run(s, 2, m=4)
    assert s.version == 6
    # a large learning rate: the clipped epochs stop pushing the batch's probabilities
    a = Reinforce(SPACE, "ppo", batch_size=8, seed=0, lr=0.5, epochs=8, clip=0.1)
    archs = a.ask(8)
    before = a.log_prob(archs)[0]
    a.tell(archs, [reward(x) for x in archs])
    ratio = (a.log_prob(archs)[0] - before).exp()
    assert torch.isfinite(ratio).all()


# ----- state --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda seed: Reinforce(SPACE, batch_size=4, grads_per_update=2, seed=seed),
        lambda seed: PPO(SPACE, batch_size=4, seed=seed),
        lambda seed: Reinforce(SPACE, "paper", batch_size=4, seed=seed, epochs=2),
    ],
)
def test_round_trip_asks_exactly_what_the_original_would(make):
    a = make(5)
    run(a, 3, m=4, objective=failing_reward)
    a.tell(a.ask(3), [0.2, None, 0.7])  # a partial batch buffered
    restored = make(99)
    restored.load_state_dict(a.state_dict())
    for s in (a, restored):
        run(s, 4, m=4, objective=failing_reward)
    assert a.ask(12) == restored.ask(12)
    assert a.version == restored.version
    for k, v in a.controller.state_dict().items():
        assert torch.equal(v, restored.controller.state_dict()[k])
    assert a.state_dict()["seen"] == restored.state_dict()["seen"]


def test_a_checkpoint_of_the_earlier_format_loads():
    s = Reinforce(SPACE, "paper", batch_size=4, seed=0)
    run(s, 2, m=4)
    old = s.state_dict()
    for key in ("batches", "seen", "told_rewards", "elite"):
        del old[key]
    restored = Reinforce(SPACE, "paper", batch_size=4, seed=1)
    restored.load_state_dict(old)
    assert restored.ask(4) == s.ask(4)


# ----- failures -----------------------------------------------------------------------------------
def test_tell_takes_none_as_a_failure_and_refuses_nan():
    for s in (RandomSearch(SPACE, seed=0), RegularizedEvolution(SPACE, 4, 2, seed=0)):
        archs = s.ask(3)
        s.tell(archs, [None, 0.5, 1])
        with pytest.raises(ValueError, match="finite.*None"):
            s.tell(archs, [math.nan, 0.5, 1.0])
        with pytest.raises(ValueError, match="number or None"):
            s.tell(archs, ["0.5", 0.5, 1.0])
    assert RandomSearch(SPACE).name == "random"


def test_evolution_never_makes_a_failure_a_parent():
    s = RegularizedEvolution(SPACE, population_size=2, sample_size=2, seed=0)
    bad = {k: "d" for k in TARGET}
    s.tell([bad, TARGET, bad], [None, 0.5, None])
    assert [a for a, _ in s.population] == [TARGET]  # failures do not join
    s.tell([TARGET], [0.1])
    for child in s.ask(10):  # parents: only TARGET
        assert sum(child[k] != TARGET[k] for k in TARGET) == 1


@pytest.mark.parametrize("settings", ["default", "paper", "enas", "ppo"])
def test_policy_strategies_learn_to_avoid_failures(settings):
    s = Reinforce(SPACE, settings, batch_size=8, seed=0, lr=0.02)
    run(s, 2, objective=failing_reward)  # everything is told, failures included
    assert s.version >= 1

    def p_failure():  # P(d0 == "d"): the first decision's softmax, estimated by sampling
        rows = s.controller.sample(2000, generator=torch.Generator().manual_seed(0)).indices
        return float((rows[:, 0] == 3).float().mean())

    before = p_failure()
    run(s, 20, objective=failing_reward)
    assert p_failure() < before

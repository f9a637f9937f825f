import pytest
import torch

from pynas.spaces import DecisionSpace, RNNCellSpace
from pynas.strategies import PRESETS, Reinforce, ReinforceSettings, preset

SPACE = DecisionSpace({f"d{i}": ["a", "b", "c", "d"] for i in range(5)})
TARGET = {"d0": "a", "d1": "b", "d2": "c", "d3": "d", "d4": "a"}


def reward(arch):
    return sum(arch[k] == TARGET[k] for k in TARGET) / len(TARGET)


def run(strategy, batches, m=8):
    for _ in range(batches):
        archs = strategy.ask(m)
        strategy.tell(archs, [reward(a) for a in archs])


def test_reinforce_concentrates_on_the_rewarded_architecture():
    torch.set_num_threads(1)
    s = Reinforce(SPACE, "paper", lr=0.01, batch_size=8, seed=0)
    p_before = float(s.log_prob([TARGET])[0][0].exp())
    run(s, 60)
    p_after = float(s.log_prob([TARGET])[0][0].exp())
    assert p_before < 0.01
    assert p_after > 0.8
    samples = s.ask(100)
    assert sum(a == TARGET for a in samples) >= 70
    assert s.version == 60


def test_zero_learning_signal_leaves_the_controller_unchanged():
    s = Reinforce(SPACE, "paper", batch_size=4, seed=0)
    before = {k: v.clone() for k, v in s.controller.state_dict().items()}
    archs = s.ask(4)
    s.tell(archs, [0.5] * 4)  # every advantage is zero (baseline starts at the batch mean)
    assert s.version == 1
    for k, v in s.controller.state_dict().items():
        assert torch.equal(v, before[k])


def test_updates_wait_for_m_archs_and_g_gradients():
    s = Reinforce(SPACE, "paper", batch_size=4, grads_per_update=3, seed=0)
    archs = s.ask(4)
    s.tell(archs[:3], [1.0, 0.0, 0.5])
    assert s.version == 0 and s.baseline is None  # less than m told: no batch yet
    s.tell(archs[3:], [0.2])
    assert s.version == 0 and s.baseline is not None  # one gradient of three
    for _ in range(2):
        archs = s.ask(4)
        s.tell(archs, [reward(a) for a in archs])
    assert s.version == 1


def test_ema_baseline():
    s = Reinforce(SPACE, "paper", batch_size=2, seed=0, baseline_decay=0.5)
    archs = s.ask(2)
    s.tell(archs, [1.0, 3.0])
    assert s.baseline == pytest.approx(0.5 * 1.0 + 0.5 * 3.0)
    s.tell(archs, [4.0, 4.0])
    assert s.baseline == pytest.approx(0.5 * (0.5 * 2.0 + 0.5 * 4.0) + 0.5 * 4.0)


def test_recomputed_log_prob_of_asked_architectures():
    s = Reinforce(RNNCellSpace(8), "enas", seed=1)
    out = s.controller.sample(5, generator=torch.Generator().manual_seed(0))
    cells = [s.space.to_arch(s.space.decode(r.tolist())) for r in out.indices]
    log_prob, entropy = s.log_prob(cells)
    torch.testing.assert_close(log_prob, out.log_prob, rtol=0, atol=1e-5)
    torch.testing.assert_close(entropy, out.entropy, rtol=0, atol=1e-5)


def test_presets_are_settings():
    paper, enas = preset("paper", "rnn"), preset("enas", "rnn")
    assert (paper.lr, paper.temperature, paper.tanh_constant, paper.entropy_weight) == (
        5e-4,
        None,
        None,
        0.0,
    )
    assert preset("paper", "cnn").lr == 6e-4
    assert (enas.lr, enas.temperature, enas.tanh_constant) == (3.5e-4, 5.0, 2.5)
    assert (enas.entropy_weight, enas.baseline_decay) == (1e-4, 0.999)
    assert set(PRESETS) == {"default", "paper", "enas", "ppo"}
    # the papers' presets use none of the later additions
    for name in ("paper", "enas"):
        p = preset(name)
        assert (p.advantage, p.epochs, p.novel, p.elite_size) == ("baseline", 1, False, 0)
    # a preset is only data: the same settings given explicitly behave identically
    a = Reinforce(SPACE, "enas", batch_size=4, seed=3)
    b = Reinforce(SPACE, ReinforceSettings(**vars(enas)), batch_size=4, seed=3)
    for s in (a, b):
        run(s, 3, m=4)
    for k, v in a.controller.state_dict().items():
        assert torch.equal(v, b.controller.state_dict()[k])
    assert a.controller.config.temperature == 5.0 and a.optimizer.param_groups[0]["lr"] == 3.5e-4
    with pytest.raises(ValueError, match="unknown preset"):
        preset("zoph")
    with pytest.raises(ValueError, match="unknown REINFORCE settings"):
        Reinforce(SPACE, lrr=1.0)


@pytest.mark.parametrize("settings", ["paper", "default"])
def test_state_dict_round_trip_continues_identically(settings):
    a = Reinforce(SPACE, settings, batch_size=4, grads_per_update=2, seed=7)
    run(a, 3, m=4)
    a.tell(a.ask(2), [0.3, None])  # leave a partial batch buffered and one gradient pending
    state = a.state_dict()
    b = Reinforce(SPACE, settings, batch_size=4, grads_per_update=2, seed=99)
    b.load_state_dict(state)
    run(a, 3, m=4)
    run(b, 3, m=4)
    assert a.ask(6) == b.ask(6)
    assert a.version == b.version and a.baseline == b.baseline
    for k, v in a.controller.state_dict().items():
        assert torch.equal(v, b.controller.state_dict()[k])

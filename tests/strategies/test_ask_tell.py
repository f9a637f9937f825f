import pytest

from pynas.arch import RNNCell
from pynas.spaces import DecisionSpace, RNNCellSpace
from pynas.strategies import RandomSearch, RegularizedEvolution, Reinforce

SPACE = DecisionSpace({f"d{i}": list(range(6)) for i in range(6)})


def objective(arch):
    return sum(arch.values()) / 30.0  # best: all 5s


def make(kind, seed):
    return {
        "random": lambda: RandomSearch(SPACE, seed=seed),
        "evolution": lambda: RegularizedEvolution(
            SPACE, population_size=10, sample_size=3, seed=seed
        ),
        "reinforce": lambda: Reinforce(SPACE, batch_size=4, seed=seed),
    }[kind]()


@pytest.mark.parametrize("kind", ["random", "evolution", "reinforce"])
def test_same_interface_seedable_and_restorable(kind):
    a, b, c = make(kind, 1), make(kind, 1), make(kind, 2)
    for s in (a, b):
        for _ in range(4):
            archs = s.ask(4)
            assert all(SPACE.validate(x) == x for x in archs)
            s.tell(archs, [objective(x) for x in archs])
    assert a.ask(5) == b.ask(5)
    assert make(kind, 1).ask(5) != c.ask(5)
    restored = make(kind, 3)
    restored.load_state_dict(a.state_dict())
    assert restored.ask(5) == a.ask(5)
    with pytest.raises(ValueError, match="rewards"):
        a.tell(a.ask(2), [1.0])


@pytest.mark.parametrize("kind", ["random", "evolution", "reinforce"])
def test_strategies_work_on_the_rnn_cell_space(kind):
    space = RNNCellSpace(4)
    s = {"random": RandomSearch, "evolution": RegularizedEvolution, "reinforce": Reinforce}[kind](
        space, seed=0
    )
    cells = s.ask(3)
    assert all(isinstance(c, RNNCell) and c.base == 4 for c in cells)
    s.tell(cells, [0.1, 0.2, 0.3])


def test_evolution_mutates_exactly_one_decision_of_a_tournament_winner():
    s = RegularizedEvolution(SPACE, population_size=5, sample_size=5, seed=0)
    members = [{f"d{i}": (k + i) % 6 for i in range(6)} for k in range(5)]
    s.tell(members, [0.1, 0.9, 0.2, 0.3, 0.4])
    best = members[1]
    for child in s.ask(20):  # sample_size == population: the winner is always the best
        assert sum(child[k] != best[k] for k in best) == 1


def test_evolution_removes_the_oldest_not_the_worst():
    s = RegularizedEvolution(SPACE, population_size=3, sample_size=2, seed=0)
    archs = [{f"d{i}": k for i in range(6)} for k in range(5)]
    s.tell(archs, [5.0, 0.0, 0.0, 0.0, 0.0])
    assert [a for a, _ in s.population] == archs[2:]  # the best (oldest) is gone


def test_evolution_beats_random_on_a_toy_objective():
    def best_after(s):
        best = 0.0
        for _ in range(40):
            archs = s.ask(5)
            rewards = [objective(a) for a in archs]
            s.tell(archs, rewards)
            best = max(best, *rewards)
        return best

    evo = [best_after(RegularizedEvolution(SPACE, 20, 5, seed=k)) for k in range(3)]
    rnd = [best_after(RandomSearch(SPACE, seed=k)) for k in range(3)]
    assert sum(evo) > sum(rnd)


@pytest.mark.parametrize("kind", ["random", "evolution", "reinforce"])
def test_strategies_follow_a_space_that_grows(kind):
    from pynas.arch import ConvNet
    from pynas.spaces.conv_space import ConvNetSpace

    space = ConvNetSpace(depth=2)
    strategy = {
        "random": lambda: RandomSearch(space, seed=0),
        "evolution": lambda: RegularizedEvolution(space, population_size=4, sample_size=2, seed=0),
        "reinforce": lambda: Reinforce(space, batch_size=4, seed=0),
    }[kind]()
    for _ in range(2):
        archs = strategy.ask(4)
        strategy.tell(archs, [float(len(a.layers)) for a in archs])
    space.set_depth(4)
    grown = strategy.ask(6)
    assert all(isinstance(a, ConvNet) and len(a.layers) == 4 for a in grown)
    strategy.tell(grown, [1.0] * 6)

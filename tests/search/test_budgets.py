from pynas.arch import NAMED_CELLS
from pynas.children.language_model import CellLanguageModel
from pynas.tasks.ptb import MEDIUM_BASELINE_PARAMS, TASK, PTBChild


def test_paper_ptb_budget_follows_spec_section_6():
    b = TASK.budget("paper")
    assert (b.batch_size, b.grads_per_update) == (1, 10)  # the paper's §4.2: m=1, g=10
    assert b.child.train.epochs == 35 and b.child.base == 8 and b.child.train.num_layers == 2
    assert b.time_limit is None and b.reinforce == {}  # the paper preset as it is

    # hidden size chosen so the 2-layer base-8 model has the medium baseline's parameter count
    def params(hidden):
        model = CellLanguageModel(NAMED_CELLS["nas_cell"], 10_000, hidden, num_layers=2,
                                  tie_weights=False)  # fmt: skip
        return sum(p.numel() for p in model.parameters())

    h = b.child.train.hidden
    assert params(h) <= MEDIUM_BASELINE_PARAMS < params(h + 1)


def test_default_ptb_budget_is_small_and_time_bounded():
    b = TASK.budget("default")
    assert b.time_limit is not None and b.time_limit <= 9 * 60
    assert b.child.train.epochs == 1 and b.child.train.train_tokens <= 60_000


def test_child_settings_are_ptb_config_fields():
    for name in TASK.budgets():
        child = TASK.budget(name).child
        assert PTBChild.from_dict(child.to_dict()) == child  # the run.json form reads back

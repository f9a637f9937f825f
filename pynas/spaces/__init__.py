"""Search spaces: ordered named categorical decisions, and the built-in spaces on top of them."""

from pynas.spaces.decision import AnchorPoint, Decision, Decisions, DecisionSpace, SpaceError, Step
from pynas.spaces.rnn_cell import RNNCellSpace

__all__ = [
    "AnchorPoint",
    "Decision",
    "DecisionSpace",
    "Decisions",
    "RNNCellSpace",
    "SpaceError",
    "Step",
]

"""Search spaces: ordered named categorical decisions, and the built-in spaces on top of them."""

from pynas.spaces.decision import Decision, Decisions, DecisionSpace, SpaceError
from pynas.spaces.rnn_cell import RNNCellSpace

__all__ = ["Decision", "DecisionSpace", "Decisions", "RNNCellSpace", "SpaceError"]

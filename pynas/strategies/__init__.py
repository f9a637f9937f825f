"""Search strategies behind one ask/tell interface."""

from pynas.strategies.base import Strategy
from pynas.strategies.evolution import RegularizedEvolution
from pynas.strategies.ppo import PPO
from pynas.strategies.presets import DEFAULT_PRESET, PRESETS, ReinforceSettings, preset
from pynas.strategies.random_search import RandomSearch
from pynas.strategies.reinforce import Gradient, Reinforce

__all__ = [
    "DEFAULT_PRESET",
    "PPO",
    "PRESETS",
    "Gradient",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "ReinforceSettings",
    "Strategy",
    "preset",
]

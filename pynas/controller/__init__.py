"""The LSTM controller (SPEC §3, §4: categorical decisions and anchor attention) and the
REINFORCE gradient as a pure function."""

from pynas.controller.lstm_controller import Controller, ControllerConfig, ControllerOutput
from pynas.controller.policy_gradient import (
    clipped_surrogate_loss,
    compute_gradient,
    reinforce_loss,
)

__all__ = [
    "Controller",
    "ControllerConfig",
    "ControllerOutput",
    "clipped_surrogate_loss",
    "compute_gradient",
    "reinforce_loss",
]

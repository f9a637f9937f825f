"""Named REINFORCE settings (SPEC §4). A preset is data: every field is an ordinary setting."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class ReinforceSettings:
    """Controller optimisation settings. ``None`` switches temperature / tanh squashing off."""

    lr: float = 5e-4
    temperature: float | None = None
    tanh_constant: float | None = None
    entropy_weight: float = 0.0
    baseline_decay: float = 0.95
    adam_betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {self.baseline_decay}")
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 or None, got {self.temperature}")
        if self.tanh_constant is not None and not self.tanh_constant > 0:
            raise ValueError(f"tanh_constant must be > 0 or None, got {self.tanh_constant}")
        if self.entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {self.entropy_weight}")


# Zoph & Le 2017: plain softmax, no entropy bonus; Adam 5e-4 (RNN search) / 6e-4 (CNN search).
# The paper does not state the baseline's decay; 0.95 is this project's choice.
_PAPER = ReinforceSettings(lr=5e-4, baseline_decay=0.95)
# Pham et al. 2018 (ENAS).
_ENAS = ReinforceSettings(
    lr=3.5e-4, temperature=5.0, tanh_constant=2.5, entropy_weight=1e-4, baseline_decay=0.999
)

PRESETS: dict[str, ReinforceSettings] = {"paper": _PAPER, "enas": _ENAS}
# Per-space-family differences of a preset (space.family: "rnn", "cnn", "generic").
FAMILY_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {("paper", "cnn"): {"lr": 6e-4}}


def preset(name: str, family: str = "rnn", **overrides: Any) -> ReinforceSettings:
    """Settings of preset `name` for a space family, with explicit `overrides` applied last."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    known = {f.name for f in fields(ReinforceSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown REINFORCE settings {unknown}; known: {sorted(known)}")
    # explicit overrides win over the family's (one dict: a key in both is not an error)
    return replace(PRESETS[name], **{**FAMILY_OVERRIDES.get((name, family), {}), **overrides})

"""Named REINFORCE settings (SPEC §4). A preset is data: every field is an ordinary setting."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

ADVANTAGES = ("baseline", "batch_standard", "batch_rank", "history_rank")


@dataclass(frozen=True)
class ReinforceSettings:
    """Controller optimisation settings. ``None`` switches temperature / tanh squashing off.

    The defaults of the fields after ``adam_betas`` are the paper's plain REINFORCE:

    * ``advantage`` — how a reward becomes the weight of its architecture's log-probability:
      ``"baseline"`` R − b with b the exponential moving average of past rewards (the paper);
      ``"batch_standard"`` the reward standardised in its batch, (R − mean) / std (PPO's
      advantage normalisation; a baseline would cancel in it); ``"batch_rank"`` the reward's
      centred rank in its batch, in [−½, ½]; ``"history_rank"`` its centred rank among every
      reward told so far, in [−½, ½] (a batch of only poor architectures is then pushed away
      from, not half towards).
    * ``failure_reward`` — the reward a failure (told as ``None``) stands for in the
      ``"baseline"`` and ``"batch_standard"`` advantages and in b; in the rank advantages a
      failure ranks below every success. 0.0 is below every accuracy or inverse perplexity;
      set it lower when rewards can be negative.
    * ``epochs`` — optimizer steps per update on the same batches; after the first, the policy
      term is PPO's clipped surrogate with ratio clip ``clip`` (Schulman et al. 2017), so a
      batch cannot move its architectures' probabilities by much more than ``clip``.
    * ``novel`` — ``ask`` never proposes an architecture it has proposed or been told before:
      it samples the policy and rejects what it has seen, and if a few hundred samples are all
      seen it samples at a higher temperature (doubling up to 2¹⁰) before allowing a repeat.
    * ``elite_size``, ``elite_weight`` — priority-queue training (Abolafia et al. 2018): the
      first step of every update also maximises ``elite_weight`` · mean log P(a) over the
      ``elite_size`` best architectures told so far.
    """

    lr: float = 5e-4
    temperature: float | None = None
    tanh_constant: float | None = None
    entropy_weight: float = 0.0
    baseline_decay: float = 0.95
    adam_betas: tuple[float, float] = (0.9, 0.999)
    advantage: str = "baseline"
    failure_reward: float = 0.0
    epochs: int = 1
    clip: float = 0.2
    novel: bool = False
    elite_size: int = 0
    elite_weight: float = 0.0

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
        if self.advantage not in ADVANTAGES:
            raise ValueError(f"advantage must be one of {list(ADVANTAGES)}, got {self.advantage!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {self.epochs!r}")
        if not 0 < self.clip < 1:
            raise ValueError(f"clip must be in (0, 1), got {self.clip}")
        if self.elite_size < 0 or self.elite_weight < 0:
            raise ValueError("elite_size and elite_weight must be >= 0")

    @property
    def plain(self) -> bool:
        """The paper's form of REINFORCE: advantage R − b with the moving-average b, one step
        per update, no novel asks, no imitation (what the Ray parameter-server search runs)."""
        return (
            self.advantage == "baseline"
            and self.epochs == 1
            and not self.novel
            and not (self.elite_size and self.elite_weight)
        )


# Zoph & Le 2017: plain softmax, no entropy bonus; Adam 5e-4 (RNN search) / 6e-4 (CNN search).
# The paper does not state the baseline's decay; 0.95 is this project's choice.
_PAPER = ReinforceSettings(lr=5e-4, baseline_decay=0.95)
# Pham et al. 2018 (ENAS).
_ENAS = ReinforceSettings(
    lr=3.5e-4, temperature=5.0, tanh_constant=2.5, entropy_weight=1e-4, baseline_decay=0.999
)
# This project's default: sample-efficient REINFORCE for searches of hundreds to thousands of
# children (issue 13; measured in bench/RESULTS.md "Search strategies on tabular benchmarks").
# lr 1e-2: a search of ~1,000 children makes ~125 updates, not the paper's thousands; of 5e-3,
# 1e-2, 2e-2 and 5e-2 it was the best on both tabular benchmarks (one value for every space).
_DEFAULT = ReinforceSettings(
    lr=1e-2,
    advantage="history_rank",
    epochs=4,
    clip=0.2,
    novel=True,
    elite_size=16,
    elite_weight=0.5,
)
# PPO (Schulman et al. 2017) as the PPO strategy runs it: clipped surrogate (ε 0.2), 4 epochs
# per batch, advantages standardised per batch, no entropy bonus (its Mujoco settings); Adam 3e-4
# is the paper's rate for many thousands of updates, a search of a thousand children has ~100.
_PPO = ReinforceSettings(lr=3e-4, advantage="batch_standard", epochs=4, clip=0.2)
PRESETS: dict[str, ReinforceSettings] = {
    "default": _DEFAULT,
    "paper": _PAPER,
    "enas": _ENAS,
    "ppo": _PPO,
}
DEFAULT_PRESET = "default"
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

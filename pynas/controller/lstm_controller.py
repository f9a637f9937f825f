"""The controller of SPEC §4: a 2-layer LSTM that emits a space's decisions one by one.

At step t the LSTM reads the embedding of the choice made at step t-1 (a learned start input at
step 0); the decision's softmax head turns the top layer's output into logits. Decisions that
share a head in the space share its softmax and its embedding table. One code path serves both
sampling and scoring a given architecture (teacher forcing), so a recomputed log-probability
equals the sampled one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pynas.spaces.decision import DecisionSpace


@dataclass(frozen=True)
class ControllerConfig:
    """Shape and sampling settings. ``None`` switches temperature / tanh squashing off."""

    hidden: int = 35
    layers: int = 2
    init_range: float = 0.08
    temperature: float | None = None
    tanh_constant: float | None = None


@dataclass
class ControllerOutput:
    """Choice indices [B, T] (declaration order), summed log-probability [B], entropy [B]."""

    indices: torch.Tensor
    log_prob: torch.Tensor
    entropy: torch.Tensor


def squash_logits(logits: torch.Tensor, config: ControllerConfig) -> torch.Tensor:
    """Optional temperature, then optional tanh squashing ``C·tanh(l/T)`` (SPEC §4)."""
    if config.temperature is not None:
        logits = logits / config.temperature
    if config.tanh_constant is not None:
        logits = config.tanh_constant * torch.tanh(logits)
    return logits


class Controller(nn.Module):
    """LSTM controller over a :class:`DecisionSpace` (any space of categorical decisions)."""

    def __init__(
        self,
        space: DecisionSpace,
        config: ControllerConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.config = config = config or ControllerConfig()
        head_names: list[str] = []
        for d in space.decisions:
            if d.head not in head_names:
                head_names.append(d.head)
        self.head_names = tuple(head_names)
        self.head_of = tuple(head_names.index(d.head) for d in space.decisions)
        sizes = [
            len(space.decisions[self.head_of.index(h)].choices) for h in range(len(head_names))
        ]
        h = config.hidden
        self.start = nn.Parameter(torch.empty(1, h))
        self.lstm = nn.LSTM(h, h, num_layers=config.layers)
        self.heads = nn.ModuleList(nn.Linear(h, n) for n in sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(n, h) for n in sizes)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every parameter uniform in [-init_range, init_range] (0.08 in the paper)."""
        r = self.config.init_range
        for p in self.parameters():
            nn.init.uniform_(p, -r, r, generator=generator)

    @property
    def num_steps(self) -> int:
        return len(self.head_of)

    def _logits(self, out: torch.Tensor, step: int) -> torch.Tensor:
        return squash_logits(self.heads[self.head_of[step]](out), self.config)

    def forward(
        self,
        indices: torch.Tensor | None = None,
        batch: int = 1,
        generator: torch.Generator | None = None,
    ) -> ControllerOutput:
        """Score `indices` [B, T] (teacher forcing), or sample `batch` architectures if None."""
        if indices is not None:
            if indices.dim() != 2 or indices.shape[1] != self.num_steps:
                raise ValueError(
                    f"indices must be [B, {self.num_steps}], got {list(indices.shape)}"
                )
            batch = indices.shape[0]
        inp = self.start.expand(batch, -1)
        state = None
        chosen, log_prob, entropy = [], 0.0, 0.0
        for step in range(self.num_steps):
            out, state = self.lstm(inp.unsqueeze(0), state)
            logp = torch.log_softmax(self._logits(out[0], step), dim=-1)
            if indices is None:
                pick = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            else:
                pick = indices[:, step]
            chosen.append(pick)
            log_prob = log_prob + logp.gather(1, pick.unsqueeze(1)).squeeze(1)
            entropy = entropy - (logp.exp() * logp).sum(dim=1)
            if step + 1 < self.num_steps:
                inp = self.embeddings[self.head_of[step]](pick)
        return ControllerOutput(torch.stack(chosen, dim=1), log_prob, entropy)  # type: ignore[arg-type]

    def sample(self, batch: int = 1, generator: torch.Generator | None = None) -> ControllerOutput:
        """Sample `batch` architectures (no autograd graph)."""
        with torch.no_grad():
            return self(batch=batch, generator=generator)

    def score(self, indices: torch.Tensor) -> ControllerOutput:
        """Log-probability and entropy of given choice indices [B, T] (with autograd graph)."""
        return self(indices=indices)

"""The controller of SPEC §4: a 2-layer LSTM that emits a space's decisions one by one.

At step t the LSTM reads the embedding of the choice made at step t-1 (a learned start input at
step 0); the decision's softmax head turns the top layer's output into logits. Decisions that
share a head in the space share its softmax and its embedding table. Sampling runs the LSTM
step by step (each input is the choice just made); scoring given architectures (teacher
forcing) knows every input in advance and runs the LSTM once over the whole sequence, which is
several times faster for the policy-gradient updates. :meth:`Controller.forward_stepwise` is
the step-by-step reference for both; tests hold the fused scoring to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
        self._groups: tuple[list[Any], list[Any]] | None = None
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
        if indices is None:
            return self.forward_stepwise(None, batch, generator)
        self._check_indices(indices)
        return self._score_fused(indices)

    def _check_indices(self, indices: torch.Tensor) -> None:
        if indices.dim() != 2 or indices.shape[1] != self.num_steps:
            raise ValueError(f"indices must be [B, {self.num_steps}], got {list(indices.shape)}")

    def forward_stepwise(
        self,
        indices: torch.Tensor | None = None,
        batch: int = 1,
        generator: torch.Generator | None = None,
    ) -> ControllerOutput:
        """The step-by-step controller: samples (`indices` None) or scores `indices`."""
        if indices is not None:
            self._check_indices(indices)
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

    def _score_fused(self, indices: torch.Tensor) -> ControllerOutput:
        """Teacher forcing in one LSTM call over the sequence.

        Steps whose heads have the same number of choices are computed together: their
        softmax weights (and the embedding tables that feed the next steps) are stacked, so a
        forward pass is a few batched matmuls whatever the number of decisions.
        """
        batch, steps = indices.shape
        inputs = [self.start.expand(batch, -1).unsqueeze(0)]
        if steps > 1:
            embedded = self.start.new_empty(steps - 1, batch, self.config.hidden)
            for heads, where in self._size_groups()[1]:
                tables = torch.stack([self.embeddings[h].weight for h in heads])  # [P, n, H]
                picks = indices[:, where].t()  # [P, B]
                rows = torch.arange(len(heads)).unsqueeze(1)
                embedded = embedded.index_copy(0, where, tables[rows, picks])
            inputs.append(embedded)
        out, _ = self.lstm(torch.cat(inputs))  # [T, B, H]
        log_prob = out.new_zeros(batch)
        entropy = out.new_zeros(batch)
        for heads, where in self._size_groups()[0]:
            weight = torch.stack([self.heads[h].weight for h in heads])  # [S, n, H]
            bias = torch.stack([self.heads[h].bias for h in heads]).unsqueeze(1)  # [S, 1, n]
            logits = torch.baddbmm(bias, out.index_select(0, where), weight.transpose(1, 2))
            logp = torch.log_softmax(squash_logits(logits, self.config), dim=-1)  # [S, B, n]
            picked = logp.gather(2, indices[:, where].t().unsqueeze(2)).squeeze(2)
            log_prob = log_prob + picked.sum(0)
            entropy = entropy - (logp.exp() * logp).sum(dim=(0, 2))
        return ControllerOutput(indices, log_prob, entropy)

    def _size_groups(self) -> tuple[list[Any], list[Any]]:
        """Steps grouped by their head's number of choices: (heads, steps) for the softmaxes,
        (tables, input positions) for the embeddings that feed the next step."""
        if self._groups is None:
            sizes = [self.heads[h].out_features for h in self.head_of]
            self._groups = (_group(sizes, self.head_of, range(len(sizes))),
                            _group(sizes, self.head_of, range(len(sizes) - 1)))  # fmt: skip
        return self._groups

    def sample(self, batch: int = 1, generator: torch.Generator | None = None) -> ControllerOutput:
        """Sample `batch` architectures (no autograd graph).

        The same draws as :meth:`forward_stepwise` with the same generator, by a leaner loop
        (the LSTM cell as two matmuls per layer on weights fetched once, no module calls).
        """
        with torch.no_grad():
            return self._sample(batch, generator)

    def _sample(self, batch: int, generator: torch.Generator | None) -> ControllerOutput:
        lstm = self.lstm
        layers = [
            (
                getattr(lstm, f"weight_ih_l{k}").t(),
                getattr(lstm, f"weight_hh_l{k}").t(),
                getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}"),
            )
            for k in range(lstm.num_layers)
        ]
        h = [self.start.new_zeros(batch, self.config.hidden) for _ in layers]
        c = [self.start.new_zeros(batch, self.config.hidden) for _ in layers]
        x = self.start.expand(batch, -1)
        picks: list[torch.Tensor] = []
        log_prob = x.new_zeros(batch)
        entropy = x.new_zeros(batch)
        for step in range(self.num_steps):
            for k, (w_ih, w_hh, bias) in enumerate(layers):  # PyTorch's gate order: i, f, g, o
                i, f, g, o = torch.addmm(bias, x, w_ih).addmm_(h[k], w_hh).chunk(4, 1)
                c[k] = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
                h[k] = x = torch.sigmoid(o) * torch.tanh(c[k])
            head = self.heads[self.head_of[step]]
            logits = squash_logits(torch.addmm(head.bias, x, head.weight.t()), self.config)
            logp = torch.log_softmax(logits, -1)
            probs = logp.exp()
            pick = torch.multinomial(probs, 1, generator=generator)
            log_prob += logp.gather(1, pick).squeeze(1)
            entropy -= (probs * logp).sum(1)
            picks.append(pick.squeeze(1))
            x = self.embeddings[self.head_of[step]].weight.index_select(0, picks[-1])
        return ControllerOutput(torch.stack(picks, dim=1), log_prob, entropy)

    def score(self, indices: torch.Tensor) -> ControllerOutput:
        """Log-probability and entropy of given choice indices [B, T] (with autograd graph)."""
        return self(indices=indices)


def _group(
    sizes: list[int], head_of: tuple[int, ...], steps: range
) -> list[tuple[list[int], torch.Tensor]]:
    """Per number of choices: the head of each of its steps, and the steps (as a tensor)."""
    by_size: dict[int, list[int]] = {}
    for step in steps:
        by_size.setdefault(sizes[step], []).append(step)
    return [([head_of[t] for t in group], torch.tensor(group)) for group in by_size.values()]

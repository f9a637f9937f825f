"""The controller of SPEC §3/§4: a 2-layer LSTM that makes a space's decisions one by one.

The controller walks the space's steps (:meth:`pynas.spaces.DecisionSpace.steps`):

* a **categorical decision**: the LSTM reads the embedding of the choice made at the step
  before (a learned start input at step 0); the decision's softmax head turns the top layer's
  output into logits. Decisions that share a head in the space share its softmax and its
  embedding table.
* an **anchor point** (CNN spaces with skip connections): one more LSTM step whose top-layer
  output is h_i, the anchor of layer i. For every earlier anchor j::

      P(j is an input of i) = sigmoid(vᵀ tanh(W_prev · h_j + W_curr · h_i))

  and each link is sampled independently (Bernoulli); their log-probabilities add to the
  architecture's. The next step reads (Σ_j b_ij h_j) / (1 + Σ_j b_ij), the mean of the chosen
  anchors' states (zero when none is chosen), as in ENAS (Pham et al. 2018).

One code path serves both sampling and scoring a given architecture (teacher forcing), so a
recomputed log-probability equals the sampled one. In a layered space (a CNN space, whose depth
can grow) every layer's fh decision shares one head, and so on, so the parameters do not depend
on the depth and scoring reads the depth from the number of decisions in its rows; the heads of
a layered space are named by their decision head (``heads.fh.weight``), those of other spaces by
position (``heads.0.weight``), the names checkpoints of earlier versions hold.

That code path, :meth:`Controller.forward_stepwise`, is the reference. A space of categorical
decisions only, at a fixed depth, has two faster paths held to it by the tests: scoring given
architectures knows every LSTM input in advance and runs the LSTM once over the whole sequence
(several times faster for the policy-gradient updates), and sampling runs a lean loop (the LSTM
cell as two matmuls per layer, no module calls) that makes the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pynas.spaces.decision import AnchorPoint, Decision, DecisionSpace


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
    """LSTM controller over a :class:`DecisionSpace`: categorical decisions and anchor points."""

    def __init__(
        self,
        space: DecisionSpace,
        config: ControllerConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.config = config = config or ControllerConfig()
        steps = space.steps()
        categorical = [s for s in steps if isinstance(s, Decision)]
        head_names: list[str] = []
        for d in categorical:
            if d.head not in head_names:
                head_names.append(d.head)
        self.head_names = tuple(head_names)
        self.head_of = tuple(head_names.index(d.head) for d in categorical)
        sizes = {d.head: len(d.choices) for d in categorical}
        h = config.hidden
        self.start = nn.Parameter(torch.empty(1, h))
        self.lstm = nn.LSTM(h, h, num_layers=config.layers)
        if space.layered:
            self.heads = nn.ModuleDict({n: nn.Linear(h, sizes[n]) for n in head_names})
            self.embeddings = nn.ModuleDict({n: nn.Embedding(sizes[n], h) for n in head_names})
            self._key = {n: n for n in head_names}
        else:
            self.heads = nn.ModuleList(nn.Linear(h, sizes[n]) for n in head_names)
            self.embeddings = nn.ModuleList(nn.Embedding(sizes[n], h) for n in head_names)
            self._key = {n: i for i, n in enumerate(head_names)}
        self.anchors = any(isinstance(s, AnchorPoint) for s in steps)
        if self.anchors:
            self.w_prev = nn.Linear(h, h, bias=False)
            self.w_curr = nn.Linear(h, h, bias=False)
            self.v = nn.Linear(h, 1, bias=False)
        # categorical decisions only, at a fixed depth: the fused scoring and lean sampling apply
        self.plain = not self.anchors and not space.layered
        self._groups: tuple[list[Any], list[Any]] | None = None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every parameter uniform in [-init_range, init_range] (0.08 in the paper)."""
        r = self.config.init_range
        for p in self.parameters():
            nn.init.uniform_(p, -r, r, generator=generator)

    @property
    def num_steps(self) -> int:
        """Decisions of an architecture of the space (at its current depth)."""
        return len(self.space.decisions)

    def _space_of(self, indices: torch.Tensor) -> DecisionSpace:
        if indices.dim() == 2 and self.space.layered:
            return self.space.for_length(indices.shape[1])  # SpaceError if no depth fits
        if indices.dim() != 2 or indices.shape[1] != self.num_steps:
            raise ValueError(f"indices must be [B, {self.num_steps}], got {list(indices.shape)}")
        return self.space

    def forward(
        self,
        indices: torch.Tensor | None = None,
        batch: int = 1,
        generator: torch.Generator | None = None,
    ) -> ControllerOutput:
        """Score `indices` [B, T] (teacher forcing), or sample `batch` architectures if None."""
        if indices is not None and self.plain:
            self._space_of(indices)  # checks the shape
            return self._score_fused(indices)
        return self.forward_stepwise(indices, batch, generator)

    def forward_stepwise(
        self,
        indices: torch.Tensor | None = None,
        batch: int = 1,
        generator: torch.Generator | None = None,
    ) -> ControllerOutput:
        """The step-by-step controller (the reference): samples (`indices` None) or scores."""
        space = self.space
        if indices is not None:
            space = self._space_of(indices)
            batch = indices.shape[0]
        walk = _Walk(self, batch, indices, generator)
        state = None
        for step in space.steps():
            out, state = self.lstm(walk.inp.unsqueeze(0), state)
            if isinstance(step, AnchorPoint):
                walk.anchor(step, out[0])
            else:
                walk.categorical(step, out[0])
        return walk.output()

    def _score_fused(self, indices: torch.Tensor) -> ControllerOutput:
        """Teacher forcing in one LSTM call over the sequence (categorical decisions only).

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
        """Sample `batch` architectures (no autograd graph): the same draws as
        :meth:`forward_stepwise` with the same generator."""
        with torch.no_grad():
            if self.plain:
                return self._sample_lean(batch, generator)
            return self.forward_stepwise(batch=batch, generator=generator)

    def _sample_lean(self, batch: int, generator: torch.Generator | None) -> ControllerOutput:
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


class _Walk:
    """One pass of the controller over a space's steps: the next input, the choices so far,
    their summed log-probability and entropy, and the anchors met (h_j and W_prev h_j)."""

    def __init__(
        self,
        controller: Controller,
        batch: int,
        indices: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> None:
        self.c = controller
        self.indices = indices
        self.generator = generator
        self.inp = controller.start.expand(batch, -1)
        self.chosen: list[torch.Tensor] = []
        self.log_prob = torch.zeros(batch)
        self.entropy = torch.zeros(batch)
        self.anchors: list[torch.Tensor] = []
        self.keys: list[torch.Tensor] = []

    def categorical(self, decision: Decision, out: torch.Tensor) -> None:
        key = self.c._key[decision.head]
        logp = torch.log_softmax(squash_logits(self.c.heads[key](out), self.c.config), dim=-1)
        if self.indices is None:
            pick = torch.multinomial(logp.exp(), 1, generator=self.generator).squeeze(1)
        else:
            pick = self.indices[:, len(self.chosen)]
        self.chosen.append(pick)
        self.log_prob = self.log_prob + logp.gather(1, pick.unsqueeze(1)).squeeze(1)
        self.entropy = self.entropy - (logp.exp() * logp).sum(dim=1)
        self.inp = self.c.embeddings[key](pick)

    def anchor(self, point: AnchorPoint, h_i: torch.Tensor) -> None:
        c = self.c
        links = len(point.links)
        if links:
            query = c.w_curr(h_i)  # [B, H]
            keys = torch.stack(self.keys[:links], dim=1)  # [B, i, H]
            logits = squash_logits(c.v(torch.tanh(keys + query.unsqueeze(1))).squeeze(2), c.config)
            if self.indices is None:
                picks = torch.bernoulli(torch.sigmoid(logits), generator=self.generator).long()
            else:
                column = len(self.chosen)
                picks = self.indices[:, column : column + links]
            self.chosen.extend(picks.unbind(1))
            bits = picks.to(logits.dtype)
            self.log_prob = self.log_prob + (
                bits * F.logsigmoid(logits) + (1 - bits) * F.logsigmoid(-logits)
            ).sum(dim=1)
            p = torch.sigmoid(logits)
            self.entropy = self.entropy + F.binary_cross_entropy_with_logits(
                logits, p, reduction="none"
            ).sum(dim=1)
            chosen = bits.unsqueeze(2) * torch.stack(self.anchors[:links], dim=1)
            self.inp = chosen.sum(dim=1) / (1 + bits.sum(dim=1, keepdim=True))
        else:
            self.inp = torch.zeros_like(h_i)
        self.anchors.append(h_i)
        self.keys.append(c.w_prev(h_i))

    def output(self) -> ControllerOutput:
        if self.chosen:
            rows = torch.stack(self.chosen, dim=1)
        else:
            rows = torch.zeros(len(self.log_prob), 0, dtype=torch.long)
        return ControllerOutput(rows, self.log_prob, self.entropy)

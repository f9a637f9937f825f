"""The CNN controller of SPEC §3/§4: the LSTM controller plus anchor-point attention.

For layer i the LSTM emits the layer's categorical decisions (each from the embedding of the
previous choice, as in :class:`pynas.controller.Controller`), then takes one more step, the
layer's **anchor point**, whose top-layer output is h_i. For every earlier layer j::

    P(j is an input of i) = sigmoid(vᵀ tanh(W_prev · h_j + W_curr · h_i))

and each is sampled independently (Bernoulli); their log-probabilities add to the
architecture's. The next layer's first step reads (Σ_j b_ij h_j) / (1 + Σ_j b_ij), the mean of
the chosen anchors' states (zero when none is chosen), as in ENAS (Pham et al. 2018).

Parameters do not depend on the depth: every layer's fh decision shares one softmax head and one
embedding table, and so on, so the same controller serves a space whose depth grows. Scoring
reads the depth from the number of decisions in the rows it is given.

A space without anchors (``ConvNetSpace(anchors=False)``: each layer reads the previous one) is a
plain sequence of categorical decisions per layer: the controller then takes no anchor step and
has no attention parameters; each step reads the embedding of the choice before it, across layer
boundaries too, exactly as :class:`pynas.controller.Controller` does, but still for any depth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pynas.controller.lstm_controller import ControllerConfig, ControllerOutput, squash_logits
from pynas.spaces.conv_space import ConvNetSpace


class AnchorController(nn.Module):
    """LSTM controller with anchor attention over a :class:`ConvNetSpace`.

    Same interface as :class:`pynas.controller.Controller`: ``forward(indices=None, batch,
    generator)``, ``sample``, ``score``, ``num_steps``; rows of indices follow the space's
    decision order (a layer's categorical choices, then ``in0..in{i-1}`` as 0/1).
    """

    def __init__(
        self,
        space: ConvNetSpace,
        config: ControllerConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(space, ConvNetSpace):
            raise TypeError(f"AnchorController needs a ConvNetSpace, got {type(space).__name__}")
        self.space = space
        self.config = config = config or ControllerConfig()
        h = config.hidden
        self.step_names = space.steps_per_layer()
        sizes = {name: len(space.layer_choices[name]) for name in self.step_names}
        self.start = nn.Parameter(torch.empty(1, h))
        self.lstm = nn.LSTM(h, h, num_layers=config.layers)
        self.heads = nn.ModuleDict({name: nn.Linear(h, n) for name, n in sizes.items()})
        self.embeddings = nn.ModuleDict({name: nn.Embedding(n, h) for name, n in sizes.items()})
        self.anchors = space.anchors
        if self.anchors:
            self.w_prev = nn.Linear(h, h, bias=False)
            self.w_curr = nn.Linear(h, h, bias=False)
            self.v = nn.Linear(h, 1, bias=False)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every parameter uniform in [-init_range, init_range] (0.08 in the paper)."""
        r = self.config.init_range
        for p in self.parameters():
            nn.init.uniform_(p, -r, r, generator=generator)

    @property
    def num_steps(self) -> int:
        """Decisions of an architecture at the space's current depth."""
        return len(self.space.decisions)

    def forward(
        self,
        indices: torch.Tensor | None = None,
        batch: int = 1,
        generator: torch.Generator | None = None,
    ) -> ControllerOutput:
        """Score `indices` [B, T] (teacher forcing), or sample `batch` architectures if None."""
        if indices is not None:
            if indices.dim() != 2:
                raise ValueError(f"indices must be [B, T], got {list(indices.shape)}")
            depth = self.space.depth_for_steps(indices.shape[1])
            batch = indices.shape[0]
        else:
            depth = self.space.depth
        inp = self.start.expand(batch, -1)
        state = None
        chosen: list[torch.Tensor] = []
        log_prob = torch.zeros(batch)
        entropy = torch.zeros(batch)
        anchors: list[torch.Tensor] = []  # h_j
        anchors_prev: list[torch.Tensor] = []  # W_prev h_j
        step = 0
        for i in range(depth):
            for name in self.step_names:
                out, state = self.lstm(inp.unsqueeze(0), state)
                logits = squash_logits(self.heads[name](out[0]), self.config)
                logp = torch.log_softmax(logits, dim=-1)
                if indices is None:
                    pick = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
                else:
                    pick = indices[:, step]
                step += 1
                chosen.append(pick)
                log_prob = log_prob + logp.gather(1, pick.unsqueeze(1)).squeeze(1)
                entropy = entropy - (logp.exp() * logp).sum(dim=1)
                inp = self.embeddings[name](pick)
            if not self.anchors:
                continue  # no skip connections to choose: the next layer reads this choice
            out, state = self.lstm(inp.unsqueeze(0), state)  # the anchor point of layer i
            h_i = out[0]
            if i > 0:
                query = self.w_curr(h_i)  # [B, H]
                keys = torch.stack(anchors_prev, dim=1)  # [B, i, H]
                logits = squash_logits(
                    self.v(torch.tanh(keys + query.unsqueeze(1))).squeeze(2), self.config
                )
                if indices is None:
                    links = torch.bernoulli(torch.sigmoid(logits), generator=generator).long()
                else:
                    links = indices[:, step : step + i]
                step += i
                chosen.extend(links.unbind(1))
                bits = links.to(logits.dtype)
                log_prob = log_prob + (
                    bits * F.logsigmoid(logits) + (1 - bits) * F.logsigmoid(-logits)
                ).sum(dim=1)
                p = torch.sigmoid(logits)
                entropy = entropy + F.binary_cross_entropy_with_logits(
                    logits, p, reduction="none"
                ).sum(dim=1)
                inp = (bits.unsqueeze(2) * torch.stack(anchors, dim=1)).sum(dim=1) / (
                    1 + bits.sum(dim=1, keepdim=True)
                )
            else:
                inp = torch.zeros_like(h_i)
            anchors.append(h_i)
            anchors_prev.append(self.w_prev(h_i))
        if chosen:
            rows = torch.stack(chosen, dim=1)
        else:
            rows = torch.zeros(batch, 0, dtype=torch.long)
        return ControllerOutput(rows, log_prob, entropy)

    def sample(self, batch: int = 1, generator: torch.Generator | None = None) -> ControllerOutput:
        """Sample `batch` architectures at the space's current depth (no autograd graph)."""
        with torch.no_grad():
            return self(batch=batch, generator=generator)

    def score(self, indices: torch.Tensor) -> ControllerOutput:
        """Log-probability and entropy of given rows [B, T] (with autograd graph)."""
        return self(indices=indices)

"""REINFORCE as pure functions: gradient of (params, samples, rewards, baseline) -> tensors.

Kept free of optimizer and baseline state so that replicas can compute gradients at a known
parameter version and a parameter server can apply them (SPEC §6).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.func import functional_call

from pynas.controller.lstm_controller import Controller


def reinforce_loss(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    rewards: torch.Tensor,
    baseline: float,
    entropy_weight: float = 0.0,
) -> torch.Tensor:
    """-1/m Σ_k (R_k − b) log P(arch_k) − w · mean entropy (minimised by the optimizer)."""
    advantage = rewards.to(log_prob.dtype) - baseline
    loss = -(advantage * log_prob).mean()
    if entropy_weight:
        loss = loss - entropy_weight * entropy.mean()
    return loss


def compute_gradient(
    controller: Controller,
    params: Mapping[str, torch.Tensor],
    indices: torch.Tensor,
    rewards: torch.Tensor,
    baseline: float,
    entropy_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Gradient of :func:`reinforce_loss` w.r.t. `params`, evaluated at `params`.

    A pure function of its inputs: neither `controller`'s own parameters nor `params` change.
    """
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    out = functional_call(controller, leaves, args=(), kwargs={"indices": indices})
    loss = reinforce_loss(out.log_prob, out.entropy, rewards, baseline, entropy_weight)
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {
        k: (g if g is not None else torch.zeros_like(v))
        for (k, v), g in zip(leaves.items(), grads, strict=True)
    }

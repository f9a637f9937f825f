"""Policy gradients as pure functions: gradient of (params, samples, rewards, baseline) -> tensors.

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


def clipped_surrogate_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    clip: float,
) -> torch.Tensor:
    """PPO's clipped surrogate (Schulman et al. 2017), negated: −1/m Σ_k min(ρ_k A_k,
    clip(ρ_k, 1 − ε, 1 + ε) A_k) with ρ_k = P(arch_k) / P_old(arch_k).

    At the sampling parameters (ρ = 1) its gradient is REINFORCE's; once an architecture's
    probability has moved by more than ε in the direction its advantage favours, it stops
    pushing.
    """
    ratio = torch.exp(log_prob - old_log_prob.to(log_prob.dtype))
    advantage = advantage.to(log_prob.dtype)
    surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - clip, 1 + clip) * advantage)
    return -surrogate.mean()


def compute_gradient(
    controller: Controller,
    params: Mapping[str, torch.Tensor],
    indices: torch.Tensor,
    rewards: torch.Tensor,
    baseline: float,
    entropy_weight: float = 0.0,
    *,
    old_log_prob: torch.Tensor | None = None,
    clip: float | None = None,
    elite: torch.Tensor | None = None,
    elite_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Gradient w.r.t. `params`, evaluated at `params`, of the policy loss of one batch.

    The loss is :func:`reinforce_loss` of the advantages ``rewards − baseline``; with `clip`
    and `old_log_prob` (the batch's log-probabilities when it was sampled) the policy term is
    :func:`clipped_surrogate_loss` instead; with `elite` (choice indices [K, T]) it adds
    ``− elite_weight · mean log P(elite)``: imitation of the best architectures seen so far
    (priority-queue training, Abolafia et al. 2018).

    A pure function of its inputs: neither `controller`'s own parameters nor `params` change.
    """
    return gradient_and_log_prob(
        controller, params, indices, rewards, baseline, entropy_weight,
        old_log_prob=old_log_prob, clip=clip, elite=elite, elite_weight=elite_weight,
    )[0]  # fmt: skip


def gradient_and_log_prob(
    controller: Controller,
    params: Mapping[str, torch.Tensor],
    indices: torch.Tensor,
    rewards: torch.Tensor,
    baseline: float,
    entropy_weight: float = 0.0,
    *,
    old_log_prob: torch.Tensor | None = None,
    clip: float | None = None,
    elite: torch.Tensor | None = None,
    elite_weight: float = 0.0,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """:func:`compute_gradient` and, from the same forward pass, the batch's log-probabilities
    at `params` (detached): the reference of later clipped steps on the same batch."""
    batch = indices.shape[0]
    rows = indices if elite is None or not elite_weight else torch.cat([indices, elite])
    own = dict(controller.named_parameters())
    if params.keys() == own.keys() and all(params[k] is own[k] for k in own):
        # the controller's own parameters: differentiate w.r.t. them directly (autograd.grad
        # writes no .grad), which skips functional_call's re-parametrisation of every module
        leaves = own
        out = controller(indices=rows)
    else:
        # fresh leaves sharing the values: the gradient is taken w.r.t. them, nothing written
        leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        out = functional_call(controller, leaves, args=(), kwargs={"indices": rows})
    log_prob, entropy = out.log_prob[:batch], out.entropy[:batch]
    if clip is not None and old_log_prob is not None:
        advantage = rewards.to(log_prob.dtype) - baseline
        loss = clipped_surrogate_loss(log_prob, old_log_prob, advantage, clip)
        if entropy_weight:
            loss = loss - entropy_weight * entropy.mean()
    else:
        loss = reinforce_loss(log_prob, entropy, rewards, baseline, entropy_weight)
    if rows is not indices:
        loss = loss - elite_weight * out.log_prob[batch:].mean()
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    tensors = {
        k: (g if g is not None else torch.zeros_like(v))
        for (k, v), g in zip(leaves.items(), grads, strict=True)
    }
    return tensors, log_prob.detach()

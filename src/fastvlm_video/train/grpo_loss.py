"""GRPO's terms as plain tensor functions (DeepSeekMath, Shao et al. 2024, eq. 3 and 4).

For a prompt q the policy samples a group of G answers o_1..o_G, each scored by rules (reward r_i).

- advantage: A_i = (r_i - mean(r)) / (std(r) + eps), the same for every token of o_i (``group_advantages``;
  std over the group, unbiased as torch's default and TRL's; ``scale="none"`` keeps only the mean, Dr. GRPO);
- ratio: rho_t = pi_theta(o_t | q, o_<t) / pi_old(o_t | q, o_<t), from log-probabilities;
- clipped surrogate: min(rho_t A, clip(rho_t, 1 - epsilon, 1 + epsilon) A);
- KL to the reference, the k3 estimator: pi_ref / pi_theta - log(pi_ref / pi_theta) - 1 (>= 0, unbiased);
- per-token loss: -(surrogate - beta * KL); the objective averages it over each answer's tokens, then over
  the answers (``loss_type="grpo"``, the paper's 1/G sum 1/|o_i| sum_t), or over all tokens of the batch
  (``"token"``, DAPO's normalisation: long answers weigh by their length).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOSS_TYPES = ("grpo", "token")


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages of ``rewards`` (G consecutive entries per prompt), and per group whether its rewards all agree.

    NaN rewards (no function applied) count as 0. Returns (advantages (B*G,), zero_std (B,) bool).
    """
    grouped = torch.nan_to_num(rewards.float(), nan=0.0).view(-1, group_size)
    mean = grouped.mean(dim=1, keepdim=True)
    std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(mean)
    centred = grouped - mean
    advantages = centred / (std + eps) if scale == "group" else centred
    zero_std = std.squeeze(1) == 0
    advantages[zero_std] = 0.0  # no signal (and no 0/0 with eps=0)
    return advantages.reshape(-1), zero_std


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi_theta || pi_ref): exp(ref - logp) - (ref - logp) - 1."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


@dataclass
class GRPOTerms:
    """The loss and what a run logs about it (floats already averaged over the completion tokens)."""

    loss: torch.Tensor
    kl: float
    clip_fraction: float  # share of tokens whose ratio was clipped (on the side that takes effect)
    ratio_mean: float


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float = 0.2,
    beta: float = 0.0,
    ref_logps: torch.Tensor | None = None,
    loss_type: str = "grpo",
) -> GRPOTerms:
    """The GRPO loss over (N, T) completion-token log-probs; ``mask`` marks each answer's tokens.

    ``advantages`` is (N,) (one per answer). ``ref_logps`` is needed when ``beta`` is not 0.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type {loss_type!r}: use one of {', '.join(LOSS_TYPES)}")
    mask = mask.to(logps.dtype)
    ratio = torch.exp(logps - old_logps)
    adv = advantages[:, None].to(logps.dtype)
    unclipped, clipped = ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv
    per_token = -torch.min(unclipped, clipped)
    kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta != 0 needs the reference log-probabilities")
        kl = k3_kl(logps, ref_logps)
        per_token = per_token + beta * kl
    tokens = mask.sum().clamp(min=1.0)
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    else:
        loss = (per_token * mask).sum() / tokens
    with torch.no_grad():
        is_clipped = ((ratio < 1 - epsilon) & (adv < 0)) | ((ratio > 1 + epsilon) & (adv > 0))
        return GRPOTerms(
            loss=loss,
            kl=float((kl * mask).sum() / tokens) if kl is not None else 0.0,
            clip_fraction=float((is_clipped.to(mask.dtype) * mask).sum() / tokens),
            ratio_mean=float((ratio * mask).sum() / tokens),
        )


def token_logps(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0, suppressed: list[int] = ()) -> torch.Tensor:
    """log p(target) under ``logits / temperature`` with the ``suppressed`` token ids excluded (the
    distribution the answers were sampled from)."""
    logits = logits.float() / temperature
    if suppressed:
        logits = logits.clone()
        logits[..., list(suppressed)] = float("-inf")
    logprobs = torch.log_softmax(logits, dim=-1)
    return logprobs.gather(-1, targets[..., None]).squeeze(-1)

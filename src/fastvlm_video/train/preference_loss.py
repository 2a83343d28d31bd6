"""Preference losses on answer log-probabilities: DPO (sigmoid), IPO and SimPO, with their implicit rewards.

Pure functions of per-pair numbers, so they are checked against hand computations:

- ``sigmoid`` (DPO, Rafailov et al. 2023): ``-log sigmoid(beta * ((pc - rc) - (pr - rr)))`` on summed log-probs,
  rewards ``beta * (pc - rc)`` and ``beta * (pr - rr)``.
- ``ipo`` (Azar et al. 2023): ``(hc - hr - 1 / (2 beta)) ** 2`` with ``h = (policy - reference) / answer tokens``
  (log-ratios averaged per token, as TRL does), rewards ``beta * h``.
- ``simpo`` (Meng et al. 2024, reference-free): ``-log sigmoid(beta * (pc / nc - pr / nr) - gamma)``, rewards
  ``beta * p / n`` (length-normalised log-probs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..constants import IGNORE_INDEX

REFERENCE_FREE = ("simpo",)


@dataclass
class PairLogps:
    """Summed answer log-probs and answer token counts of B chosen and B rejected sequences."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor

    @classmethod
    def from_rows(cls, logps: torch.Tensor, tokens: torch.Tensor) -> PairLogps:
        """2B rows, chosen first (the collator's layout) -> pairs."""
        chosen, rejected = logps.chunk(2)
        chosen_tokens, rejected_tokens = tokens.chunk(2)
        return cls(chosen, rejected, chosen_tokens, rejected_tokens)

    def detach(self) -> PairLogps:
        return PairLogps(*(t.detach() for t in (self.chosen, self.rejected, self.chosen_tokens, self.rejected_tokens)))


def answer_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed log-prob of the labelled tokens (each predicted from the previous position) and their count."""
    targets = labels[:, 1:]
    token_logps = -F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(targets.shape)
    return token_logps.sum(-1), (targets != IGNORE_INDEX).sum(-1)


def preference_loss(
    policy: PairLogps, reference: PairLogps | None, loss_type: str, beta: float, gamma: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair losses and the chosen / rejected rewards (detached). ``reference`` may be None only for SimPO."""
    if loss_type in REFERENCE_FREE:
        chosen = policy.chosen / policy.chosen_tokens
        rejected = policy.rejected / policy.rejected_tokens
        losses = -F.logsigmoid(beta * (chosen - rejected) - gamma)
    else:
        if reference is None:
            raise ValueError(f"--loss_type {loss_type} needs reference log-probs")
        chosen = policy.chosen - reference.chosen
        rejected = policy.rejected - reference.rejected
        if loss_type == "sigmoid":
            losses = -F.logsigmoid(beta * (chosen - rejected))
        elif loss_type == "ipo":
            chosen, rejected = chosen / policy.chosen_tokens, rejected / policy.rejected_tokens
            losses = (chosen - rejected - 1 / (2 * beta)) ** 2
        else:
            raise ValueError(f"unknown preference loss {loss_type!r}")
    return losses, (beta * chosen).detach(), (beta * rejected).detach()


def reward_metrics(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, policy: PairLogps) -> dict[str, float]:
    """What DPO runs are watched by (TRL's names): rewards, reward accuracy and margin, answer log-probs."""
    return {
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
        "logps/chosen": policy.chosen.detach().mean().item(),
        "logps/rejected": policy.rejected.detach().mean().item(),
    }

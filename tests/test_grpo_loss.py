"""GRPO's advantage, ratio, clipping and KL terms against the formulas, computed by hand."""

import math

import pytest
import torch

from fastvlm_video.train.grpo_loss import group_advantages, grpo_loss, k3_kl, token_logps


def test_advantages_are_normalised_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0])  # two groups of G=4
    adv, zero_std = group_advantages(rewards, 4, eps=0.0)
    mean, std = 0.25, math.sqrt(((0.75**2) + 3 * (0.25**2)) / 3)  # unbiased std
    assert adv[:4].tolist() == pytest.approx([(1 - mean) / std, -mean / std, -mean / std, -mean / std])
    assert adv[4:].tolist() == [0.0] * 4  # no signal in a group whose answers all score the same
    assert zero_std.tolist() == [False, True]


def test_advantages_eps_scale_none_and_missing_rewards():
    adv, _ = group_advantages(torch.tensor([1.0, 0.0]), 2)
    assert adv.tolist() == pytest.approx([0.5 / (math.sqrt(0.5) + 1e-4), -0.5 / (math.sqrt(0.5) + 1e-4)])
    adv, _ = group_advantages(torch.tensor([3.0, 1.0]), 2, scale="none")
    assert adv.tolist() == [1.0, -1.0]  # Dr. GRPO: centred only
    adv, _ = group_advantages(torch.tensor([float("nan"), 1.0]), 2, scale="none")
    assert adv.tolist() == [-0.5, 0.5]  # no reward applied counts as 0


def test_k3_kl_matches_the_formula_and_is_zero_at_the_reference():
    logp, ref = torch.tensor([-1.0, -0.5]), torch.tensor([-2.0, -0.5])
    expected = [math.exp(-1.0) - (-1.0) - 1, 0.0]
    assert k3_kl(logp, ref).tolist() == pytest.approx(expected)
    assert (k3_kl(torch.randn(50), torch.randn(50)) >= 0).all()


def test_on_policy_loss_is_minus_the_mean_advantage_and_its_gradient_is_the_policy_gradient():
    logp = torch.tensor([[-0.5, -1.0], [-2.0, -0.1]], requires_grad=True)
    adv, mask = torch.tensor([1.0, -2.0]), torch.tensor([[1, 1], [1, 0]])
    terms = grpo_loss(logp, logp.detach(), adv, mask)  # ratio 1: nothing clipped
    assert terms.loss.item() == pytest.approx(-(1.0 + -2.0) / 2)
    assert terms.clip_fraction == 0.0 and terms.ratio_mean == pytest.approx(1.0) and terms.kl == 0.0
    terms.loss.backward()
    # d/dlogp of -A * exp(logp - old) at ratio 1 = -A, averaged per answer over its tokens, then over answers
    assert logp.grad.flatten().tolist() == pytest.approx([-1.0 / 2 / 2, -1.0 / 2 / 2, 2.0 / 1 / 2, 0.0])


def test_clipping_takes_the_pessimistic_side():
    old = torch.zeros(4, 1)
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5])
    logp = torch.log(ratio)[:, None].requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    terms = grpo_loss(logp, old, adv, torch.ones(4, 1), epsilon=0.2)
    # per answer: min(r A, clip(r) A): 1.2 | -1.5 | 0.5 | -0.8
    assert terms.loss.item() == pytest.approx(-(1.2 - 1.5 + 0.5 - 0.8) / 4)
    assert terms.clip_fraction == pytest.approx(0.5)  # answers 0 and 3 are clipped
    assert terms.ratio_mean == pytest.approx(1.0)
    terms.loss.backward()
    # clipped answers give no gradient; the others -A * r / 4
    assert logp.grad[:, 0].tolist() == pytest.approx([0.0, 1.5 / 4, -0.5 / 4, 0.0])


def test_kl_term_is_beta_times_k3_averaged_over_tokens():
    logp = torch.tensor([[-1.0, -1.0]])
    ref = torch.tensor([[-2.0, -1.0]])
    k3 = math.exp(-1.0) + 1.0 - 1
    terms = grpo_loss(logp, logp, torch.zeros(1), torch.ones(1, 2), beta=0.1, ref_logps=ref)
    assert terms.kl == pytest.approx(k3 / 2)
    assert terms.loss.item() == pytest.approx(0.1 * k3 / 2)
    with pytest.raises(ValueError, match="reference"):
        grpo_loss(logp, logp, torch.zeros(1), torch.ones(1, 2), beta=0.1)


def test_token_loss_type_weighs_answers_by_length():
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    adv = torch.tensor([1.0, -1.0])
    assert grpo_loss(logp, logp, adv, mask, loss_type="token").loss.item() == pytest.approx(-(3 * 1.0 - 1.0) / 4)
    assert grpo_loss(logp, logp, adv, mask, loss_type="grpo").loss.item() == pytest.approx(0.0)


def test_token_logps_use_the_sampling_temperature():
    logits = torch.tensor([[[2.0, 0.0]]])
    expected = 1.0 - math.log(math.exp(1.0) + 1.0)
    assert token_logps(logits, torch.tensor([[0]]), temperature=2.0).item() == pytest.approx(expected)


def test_token_logps_leave_suppressed_tokens_out():
    logits = torch.tensor([[[1.0, 1.0, 5.0]]])
    assert token_logps(logits, torch.tensor([[0]]), suppressed=[2]).item() == pytest.approx(math.log(0.5))

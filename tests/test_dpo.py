"""DPO: the losses against formulas, the loss on a tiny model against a hand computation, one decode and
one tower pass per pair, labels exactly as SFT's, and the references (copy, LoRA off, precomputed)."""

import copy
import math

import pytest
import torch

from fastvlm_video.constants import IGNORE_INDEX
from fastvlm_video.data import dataset as dataset_module
from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.dataset import ConversationDataset
from fastvlm_video.data.preference import PreferenceCollator, PreferenceDataset
from fastvlm_video.data.records import parse_record
from fastvlm_video.errors import ConfigError
from fastvlm_video.media.transforms import to_model_pixels
from fastvlm_video.model.lora import LoraSettings, apply_lora
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.train.args import TrainingArguments
from fastvlm_video.train.dpo import DPOTrainer, fastvlm_of, frozen_copy, pair_forward, tower_output
from fastvlm_video.train.preference_loss import PairLogps, preference_loss
from fastvlm_video.video_config import VideoConfig

VIDEO = VideoConfig(num_frames=2, image_size=64)
RECORDS = [
    {"id": "v", "video": "left.mp4", "conversations": [{"from": "human", "value": "<video>\nWhere?"}], "chosen": "left", "rejected": "up up"},
    {"id": "m", "images": ["still.png"], "videos": ["up.MOV"], "messages": [{"role": "user", "content": "<video>\n<image>\nSame?"}],
     "chosen": "no", "rejected": "a still image"},
    {"id": "t", "prompt": "Say hi", "chosen": "hi", "rejected": "up"},
]  # fmt: skip


def pairs(media_folder):
    return [parse_record(r, "pairs.json", i, media_folder) for i, r in enumerate(RECORDS)]


def pair_logps(*values):
    return PairLogps(*(torch.tensor(v, dtype=torch.float64) for v in values))


def test_losses_match_their_formulas():
    policy = pair_logps([-3.0, -5.0], [-4.0, -2.0], [2.0, 4.0], [3.0, 1.0])
    ref = pair_logps([-3.5, -4.0], [-3.0, -2.5], [2.0, 4.0], [3.0, 1.0])
    beta = 0.2
    losses, chosen, rejected = preference_loss(policy, ref, "sigmoid", beta)
    for i in range(2):
        h = (policy.chosen[i] - ref.chosen[i]) - (policy.rejected[i] - ref.rejected[i])
        assert losses[i].item() == pytest.approx(math.log1p(math.exp(-beta * h.item())), abs=1e-12)
        assert chosen[i].item() == pytest.approx(beta * (policy.chosen[i] - ref.chosen[i]).item())
        assert rejected[i].item() == pytest.approx(beta * (policy.rejected[i] - ref.rejected[i]).item())
    losses, chosen, rejected = preference_loss(policy, ref, "ipo", beta)
    for i in range(2):
        hc = (policy.chosen[i] - ref.chosen[i]).item() / policy.chosen_tokens[i].item()
        hr = (policy.rejected[i] - ref.rejected[i]).item() / policy.rejected_tokens[i].item()
        assert losses[i].item() == pytest.approx((hc - hr - 1 / (2 * beta)) ** 2, abs=1e-12)
        assert chosen[i].item() == pytest.approx(beta * hc) and rejected[i].item() == pytest.approx(beta * hr)
    losses, chosen, rejected = preference_loss(policy, None, "simpo", 2.0, gamma=0.5)
    for i in range(2):
        c = policy.chosen[i].item() / policy.chosen_tokens[i].item()
        r = policy.rejected[i].item() / policy.rejected_tokens[i].item()
        assert losses[i].item() == pytest.approx(math.log1p(math.exp(-(2.0 * (c - r) - 0.5))), abs=1e-12)
    with pytest.raises(ValueError, match="needs reference"):
        preference_loss(policy, None, "sigmoid", beta)


def test_both_answers_are_labelled_as_sft_labels_the_answer(tokenizer, media_folder):
    encoder = ChatEncoder(tokenizer, VIDEO.tokens_per_frame)
    samples = pairs(media_folder)
    item = PreferenceDataset(samples, encoder, VIDEO).build(samples[0])
    sft = ConversationDataset(samples, encoder, VIDEO).build(samples[0])  # the chosen answer as an SFT sample
    assert torch.equal(item["chosen_input_ids"], sft["input_ids"]) and torch.equal(item["chosen_labels"], sft["labels"])
    trained = item["rejected_labels"][item["rejected_labels"] != IGNORE_INDEX].tolist()
    assert trained == encoder.text_ids("up up") + [encoder.im_end_id]  # the answer and its <|im_end|>, nothing else
    start = int((item["rejected_labels"] != IGNORE_INDEX).nonzero()[0])
    assert torch.equal(item["rejected_input_ids"][:start], item["chosen_input_ids"][:start])  # one prompt, two answers
    assert (item["chosen_labels"][:start] == IGNORE_INDEX).all()


def test_media_are_decoded_once_per_pair(tokenizer, media_folder, monkeypatch):
    calls = []
    for name in ("load_video_tensor", "load_image_tensor"):
        real = getattr(dataset_module, name)
        monkeypatch.setattr(dataset_module, name, lambda *a, _real=real, _name=name, **k: (calls.append(_name), _real(*a, **k))[1])
    samples = pairs(media_folder)
    item = PreferenceDataset(samples, ChatEncoder(tokenizer, VIDEO.tokens_per_frame), VIDEO).build(samples[1])
    assert sorted(calls) == ["load_image_tensor", "load_video_tensor"]
    assert item["pixel_values"].shape[0] == 3  # 2 video frames + 1 image, once for both answers


def make_trainer(model, tmp_path, samples, tokenizer, **kwargs):
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none", method="dpo", per_device_eval_batch_size=2)
    dataset = PreferenceDataset(samples, ChatEncoder(tokenizer, VIDEO.tokens_per_frame), VIDEO)
    collator = PreferenceCollator(pad_token_id=tokenizer.pad_token_id)
    return DPOTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator, **kwargs), dataset, collator


def perturbed(model, seed=1, scale=0.05, only_trainable=False):
    """The model with noise on every LLM and projector weight (or every trainable one): a policy that differs from its reference."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "vision_tower" not in name and (param.requires_grad or not only_trainable):
                param.add_(scale * torch.randn(param.shape, generator=generator))
    return model


def hand_logp(model, input_ids, labels, frames) -> float:
    """Sum of log p(label) over the labelled tokens, one sequence, the model's own forward (its tower run on its frames)."""
    with torch.no_grad():
        pixels = to_model_pixels(frames) if frames is not None else None
        logits = model(input_ids=input_ids[None], pixel_values=pixels).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    return sum(logp[t - 1, labels[t]].item() for t in range(1, len(labels)) if labels[t] != IGNORE_INDEX)


def test_dpo_loss_on_a_tiny_model_equals_a_hand_computation(tokenizer, media_folder, tmp_path):
    torch.manual_seed(0)
    reference = build_tiny_model(tokenizer, seed=0).eval()
    policy = perturbed(copy.deepcopy(reference)).eval()
    samples = pairs(media_folder)
    beta = 0.3
    trainer, dataset, collator = make_trainer(policy, tmp_path, samples, tokenizer, beta=beta, loss_type="sigmoid",
                                              reference="copy", ref_model=reference)  # fmt: skip
    items = [dataset[i] for i in range(len(samples))]
    loss = trainer.compute_loss(policy, collator(items)).item()
    expected = []
    for item in items:
        h = 0.0
        for key, sign in (("chosen", 1), ("rejected", -1)):
            ids, labels = item[f"{key}_input_ids"], item[f"{key}_labels"]
            h += sign * (hand_logp(policy, ids, labels, item["pixel_values"]) - hand_logp(reference, ids, labels, item["pixel_values"]))
        expected.append(-math.log(1 / (1 + math.exp(-beta * h))))
    assert abs(loss - sum(expected) / len(expected)) < 1e-6
    logged = trainer._metrics["eval"]  # the models are in eval mode: the metrics went to the eval bucket
    assert set(logged) >= {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"}


@pytest.mark.parametrize("tower_trains, expected", [(False, [5]), (True, [5, 5])])
def test_the_tower_runs_once_per_batch_for_policy_and_reference(tower_trains, expected, tokenizer, media_folder, tmp_path):
    """A frozen tower runs once per batch (2 + 3 frames), its output serving both rows and the reference; a trained
    tower runs once for the policy and once for the reference's own weights."""
    reference = build_tiny_model(tokenizer, seed=0).eval()
    policy = perturbed(copy.deepcopy(reference)).eval()
    policy.model.vision_tower.requires_grad_(tower_trains)
    calls = []
    for model in (policy, reference):
        model.model.vision_tower.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    trainer, dataset, collator = make_trainer(policy, tmp_path, pairs(media_folder), tokenizer, beta=0.1, loss_type="sigmoid",
                                              reference="copy", ref_model=reference)  # fmt: skip
    trainer.compute_loss(policy, collator([dataset[0], dataset[1], dataset[2]]))
    assert calls == expected


def test_lora_reference_is_the_base_model(tokenizer, media_folder, tmp_path):
    base = build_tiny_model(tokenizer, seed=0).eval()
    model = apply_lora(copy.deepcopy(base), LoraSettings(r=4, alpha=8, dropout=0.0, target_modules="all-linear", bias="none"))
    perturbed(model, scale=0.05, only_trainable=True)  # adapters and the projector's trainable copy move away from the base
    samples = pairs(media_folder)
    trainer, dataset, collator = make_trainer(model, tmp_path, samples, tokenizer, beta=0.1, loss_type="sigmoid", reference="adapter_off")
    batch = collator([dataset[0], dataset[1]])
    hidden = hidden_of(base, batch)
    off = trainer.reference_logps(model, dict(batch), hidden)
    on_base = pair_forward(base, base, hidden, batch)
    with torch.no_grad():
        policy = pair_forward(model, fastvlm_of(model), hidden, batch)
    assert torch.allclose(off.chosen, on_base.chosen, atol=1e-5) and torch.allclose(off.rejected, on_base.rejected, atol=1e-5)
    assert not torch.allclose(policy.chosen, on_base.chosen, atol=1e-2)  # the adapter was on for the policy


def test_precomputed_reference_equals_the_copy(tokenizer, media_folder, tmp_path):
    reference = build_tiny_model(tokenizer, seed=0).eval()
    samples = pairs(media_folder)
    trainer, dataset, collator = make_trainer(copy.deepcopy(reference), tmp_path, samples, tokenizer, beta=0.1, loss_type="sigmoid",
                                              reference="precompute")  # fmt: skip
    trainer.precompute_reference([dataset], tmp_path / "out")
    assert (tmp_path / "out" / "reference_logps.json").is_file()
    copy_trainer, *_ = make_trainer(reference, tmp_path, samples, tokenizer, beta=0.1, loss_type="sigmoid", reference="copy",
                                    ref_model=frozen_copy(reference))  # fmt: skip
    batch = collator([dataset[0], dataset[2]])
    stored = trainer.stored_reference(batch["pair_keys"])
    live = copy_trainer.reference_logps(reference, dict(batch), hidden_of(reference, batch))
    assert torch.allclose(stored.chosen, live.chosen, atol=1e-4) and torch.allclose(stored.rejected, live.rejected, atol=1e-4)
    with pytest.raises(ConfigError, match="no reference log-probs"):
        trainer.stored_reference(["another file, record 0 (id 'x')"])


def hidden_of(model, batch):
    """The frozen tower's output for the batch's frames (what the trainer shares with the reference)."""
    return tower_output(model, batch["pixel_values"]) if "pixel_values" in batch else None

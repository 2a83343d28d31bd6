"""GRPO's batching keeps every frame with its sample: features computed once for B prompts of 1, 4 and 16
frames, repeated for G answers each, give the same answer log-probabilities as each row run on its own."""

import torch

from fastvlm_video.constants import IMAGE_TOKEN
from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.records import Message
from fastvlm_video.model.tiny import build_tiny_model
from fastvlm_video.train.grpo_trainer import GRPOSettings, GRPOTrainer, completion_mask, frame_index


def test_frame_index_repeats_each_prompts_frames_per_answer():
    assert frame_index([1, 3], 2).tolist() == [0, 0, 1, 2, 3, 1, 2, 3]
    assert frame_index([0, 2], 2).tolist() == [0, 1, 0, 1]  # a text-only prompt has no frames


def test_completion_mask_ends_at_the_first_end_token():
    mask, ended = completion_mask(torch.tensor([[5, 9, 0, 0], [5, 6, 7, 8], [9, 9, 0, 0]]), eos_id=9)
    assert mask.int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert ended.tolist() == [True, False, True]


def test_batched_rows_score_like_each_sample_alone(tokenizer):
    torch.manual_seed(0)
    model = build_tiny_model(tokenizer, seed=0).eval()
    encoder = ChatEncoder(tokenizer, tokens_per_frame=(64 // 64) ** 2)
    frames = [1, 4, 16]
    pixels = [torch.rand(n, 3, 64, 64) for n in frames]
    prompts = [torch.tensor(encoder.encode([Message("user", f"{IMAGE_TOKEN}\nq{i}")], [n], add_generation_prompt=True).input_ids)
               for i, n in enumerate(frames)]  # fmt: skip
    g, eos = 2, encoder.im_end_id
    completions = torch.tensor([[11, 12, eos, 0], [13, eos, 0, 0], [14, 15, 16, 17], [18, eos, 0, 0], [19, 20, eos, 0], [21, eos, 0, 0]])
    trainer = GRPOTrainer.__new__(GRPOTrainer)  # only the row helpers: no Trainer set-up
    trainer.grpo, trainer.eos_id = GRPOSettings(num_generations=g), eos
    trainer.tokenizer = tokenizer
    ids, attention, starts, mask, _ = trainer.rows(prompts, completions)
    with torch.no_grad():
        image = model.get_image_features(pixel_values=torch.cat(pixels), return_dict=True)
        rows = frame_index(frames, g)
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        logits = model(input_ids=ids, attention_mask=attention,
                       mm_encoder_outputs={"image": BaseModelOutputWithPooling(pooler_output=image.pooler_output[rows])}).logits  # fmt: skip
        batched = trainer.answer_logps(logits, ids, starts, mask.shape[1])
        for r in range(len(completions)):
            n = int(mask[r].sum())
            alone = torch.cat([prompts[r // g], completions[r, :n]])[None]
            single = model(input_ids=alone, pixel_values=pixels[r // g]).logits
            expected = trainer.answer_logps(single, alone, [starts[r]], n)[0]
            torch.testing.assert_close(batched[r, :n], expected, rtol=1e-4, atol=1e-5)


def test_generation_never_samples_the_image_token(tokenizer):
    """A sampled <image> would ask the loss forward for image features it does not have."""
    from types import SimpleNamespace

    model = build_tiny_model(tokenizer, seed=0).eval()
    image_token = model.config.image_token_id
    model.lm_head.register_forward_hook(lambda m, i, out: out.index_add(-1, torch.tensor([image_token]), torch.full((*out.shape[:-1], 1), 50.0)))
    encoder = ChatEncoder(tokenizer, tokens_per_frame=1)
    trainer = GRPOTrainer.__new__(GRPOTrainer)
    trainer.grpo, trainer.eos_id, trainer.tokenizer = GRPOSettings(num_generations=4, max_completion_length=3), encoder.im_end_id, tokenizer
    trainer.model, trainer.suppressed, trainer._micro = model, [image_token], (-1, 0)
    trainer.state = SimpleNamespace(global_step=0)
    trainer.args = SimpleNamespace(seed=0, process_index=0, device=torch.device("cpu"), model_max_length=64)
    prompt = torch.tensor(encoder.encode([Message("user", "q")], [], add_generation_prompt=True).input_ids)
    out = trainer.generate(model, [prompt], [0], None)
    assert not (out == image_token).any()
    trainer.suppressed = []
    assert (trainer.generate(model, [prompt], [0], None) == image_token).any()  # the hook does favour it


def test_prompts_of_one_length_generate_as_one_batch_with_their_own_frames(tokenizer):
    """Consecutive prompts of one length share one ``generate`` call; each row still sees its own prompt's
    frames: near-greedy answers (temperature 1e-4) are those of each prompt generated alone."""
    from types import SimpleNamespace

    from fastvlm_video.train.grpo_trainer import equal_length_runs

    model = build_tiny_model(tokenizer, seed=0).eval()
    encoder = ChatEncoder(tokenizer, tokens_per_frame=1)
    frames = [2, 2, 3, 0]
    texts = ["qa", "qb", "qc", "a longer text-only question"]
    prompts = [torch.tensor(encoder.encode([Message("user", (f"{IMAGE_TOKEN}\n" if n else "") + t)], [n] if n else [],
                                           add_generation_prompt=True).input_ids) for t, n in zip(texts, frames)]  # fmt: skip
    assert equal_length_runs(prompts) == [[0, 1], [2], [3]]
    trainer = GRPOTrainer.__new__(GRPOTrainer)
    trainer.grpo = GRPOSettings(num_generations=2, max_completion_length=4, temperature=1e-4)
    trainer.eos_id, trainer.tokenizer = encoder.im_end_id, tokenizer
    trainer.model, trainer.suppressed, trainer._micro = model, [model.config.image_token_id], (-1, 0)
    trainer.state = SimpleNamespace(global_step=0)
    trainer.args = SimpleNamespace(seed=0, process_index=0, device=torch.device("cpu"), model_max_length=128)
    with torch.no_grad():
        shape = model.get_image_features(pixel_values=torch.rand(1, 3, 64, 64), return_dict=True).pooler_output.shape[1:]
    torch.manual_seed(0)
    image = SimpleNamespace(pooler_output=30 * torch.randn(sum(frames), *shape))  # strong features: answers depend on them
    together = trainer.generate(model, prompts, frames, image)
    starts = [0, 2, 4, 7]
    for b, (prompt, n) in enumerate(zip(prompts, frames)):
        own = SimpleNamespace(pooler_output=image.pooler_output[starts[b] : starts[b] + n]) if n else None
        alone = trainer.generate(model, [prompt], [n], own)
        rows = together[2 * b : 2 * b + 2, : alone.shape[1]]
        assert torch.equal(rows, alone), (b, rows, alone)
    assert not torch.equal(together[0], together[2])  # the prompts' frames differ, and so do their answers

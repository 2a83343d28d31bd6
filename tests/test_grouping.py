"""--group_by_modality_length: token lengths from records, modality-pure length-sorted batches,
deterministic under a seed, disjoint and complete across DDP ranks, and the same batches after a resume."""

from __future__ import annotations

import random

import pytest
import torch
from accelerate.data_loader import BatchSamplerShard
from torch.utils.data import BatchSampler

from fastvlm_video.data.chat import ChatEncoder
from fastvlm_video.data.dataset import ConversationDataset
from fastvlm_video.data.grouping import ModalityLengthGroupedSampler, modality_of, padding_share, token_length
from fastvlm_video.data.records import MediaRef, Message, Sample
from fastvlm_video.video_config import VideoConfig


def mixed(n: int, seed: int = 0) -> tuple[list[int], list[str]]:
    """Lengths and modalities like a mixed set: videos long, images medium, text short, all varied."""
    rng = random.Random(seed)
    spans = {"video": (500, 700), "image": (80, 200), "text": (10, 120)}
    modalities = [rng.choice(list(spans)) for _ in range(n)]
    return [rng.randint(*spans[m]) for m in modalities], modalities


def shard(sampler, batch_size: int, world_size: int) -> list[list[list[int]]]:
    """Each rank's batches, cut exactly as accelerate's ``prepare`` cuts the Trainer's DataLoader."""
    batches = BatchSampler(sampler, batch_size, drop_last=False)
    return [list(BatchSamplerShard(batches, num_processes=world_size, process_index=r)) for r in range(world_size)]


def test_order_is_a_permutation_fixed_by_seed_and_epoch():
    lengths, modalities = mixed(103)
    a = ModalityLengthGroupedSampler(lengths, modalities, batch_size=4, world_size=2, seed=7)
    b = ModalityLengthGroupedSampler(lengths, modalities, batch_size=4, world_size=2, seed=7)
    assert sorted(a) == list(range(103))
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(b) != list(a) and sorted(b) == list(range(103))
    assert list(ModalityLengthGroupedSampler(lengths, modalities, 4, 2, seed=8)) != list(a)


def test_batches_are_modality_pure_and_cut_padding():
    lengths, modalities = mixed(400)
    sampler = ModalityLengthGroupedSampler(lengths, modalities, batch_size=8)
    order = list(sampler)
    full = [order[k : k + 8] for k in range(0, len(order) - len(order) % 8, 8)]
    remainder_steps = 3  # at most one incomplete step per modality ends up in the mixed tail
    assert sum(len({modalities[i] for i in b}) > 1 for b in full) <= remainder_steps
    shuffled = list(range(400))
    random.Random(0).shuffle(shuffled)
    random_batches = [shuffled[k : k + 8] for k in range(0, 400, 8)]
    assert padding_share(lengths, full) * 2 < padding_share(lengths, random_batches)


@pytest.mark.parametrize("world_size,batch_size,n", [(2, 3, 60), (4, 2, 37)])
def test_ddp_ranks_get_disjoint_shares_of_same_modality_steps(world_size, batch_size, n):
    lengths, modalities = mixed(n, seed=world_size)
    sampler = ModalityLengthGroupedSampler(lengths, modalities, batch_size, world_size, seed=3)
    ranks = shard(sampler, batch_size, world_size)
    seen = [i for rank in ranks for batch in rank for i in batch]
    assert set(seen) == set(range(n))  # complete
    if n % (world_size * batch_size) == 0:
        assert len(seen) == n  # and disjoint (otherwise accelerate repeats a few to even the last step)
    steps = list(zip(*ranks))
    pure = [len({modalities[i] for batch in step for i in batch}) == 1 for step in steps]
    assert sum(pure) >= len(steps) - 3


def test_token_length_from_records_matches_the_built_sample(tokenizer, media_folder, tmp_path):
    from PIL import Image

    gif = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (32, 24), (40 * k, 0, 0)) for k in range(6)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    video = VideoConfig(num_frames=4, image_size=64)
    encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
    ask = [Message("user", "<image>\nWhich way?"), Message("assistant", "left")]
    samples = [
        Sample("v", ask, [MediaRef(str(media_folder / "left.mp4"), "video")]),
        Sample("i", ask, [MediaRef(str(media_folder / "still.png"), "image")]),
        Sample("t", [Message("user", "Say hi"), Message("assistant", "hi there")]),
        Sample("g", ask, [MediaRef(str(gif), "image")]),  # an animation loads as frames
    ]
    dataset = ConversationDataset(samples, encoder, video)
    assert [modality_of(s) for s in samples] == ["video", "image", "text", "video"]
    assert [token_length(s, encoder, video) for s in samples] == [len(dataset[i]["input_ids"]) for i in range(4)]


def test_resume_replays_the_same_batches(tmp_path, tiny_model_dir, tokenizer):
    """Train 6 steps (4 per epoch); resume from step 5 (inside epoch 1): steps 6 see the same samples."""
    from fastvlm_video.data.collate import Collator
    from fastvlm_video.model.load import load_model
    from fastvlm_video.train.args import TrainingArguments
    from fastvlm_video.train.trainer import VideoTrainer

    video = VideoConfig(num_frames=2, image_size=64)
    encoder = ChatEncoder(tokenizer, video.tokens_per_frame)
    samples = [
        Sample(f"s{k}", [Message("user", "hi " * (1 + 3 * k)), Message("assistant", "hello " * (1 + k % 3))]) for k in range(8)
    ]

    def run(out, resume=None) -> list[list[str]]:
        seen: list[list[str]] = []
        collate = Collator(pad_token_id=tokenizer.pad_token_id)

        def recording(items):
            seen.append([it["id"] for it in items])
            return collate(items)

        args = TrainingArguments(
            output_dir=str(out), per_device_train_batch_size=2, max_steps=6, save_steps=5, save_strategy="steps",
            group_by_modality_length=True, seed=11, report_to="none", use_cpu=True, learning_rate=1e-3,
            dataloader_num_workers=0, disable_tqdm=True, logging_steps=100,
        )  # fmt: skip
        torch.manual_seed(0)
        trainer = VideoTrainer(
            model=load_model(str(tiny_model_dir)), args=args, train_dataset=ConversationDataset(samples, encoder, video),
            data_collator=recording,
        )  # fmt: skip
        trainer.train(resume_from_checkpoint=resume)
        return seen

    full = run(tmp_path / "a")[:6]  # the loader may prefetch one batch past the last step
    epoch0, epoch1 = full[:4], full[4:]
    assert sorted(i for b in epoch0 for i in b) == sorted(s.id for s in samples)
    assert epoch1 != epoch0[:2]  # a new epoch, a new order
    resumed = run(tmp_path / "b", resume=str(tmp_path / "a" / "checkpoint-5"))
    assert resumed[:1] == full[5:]

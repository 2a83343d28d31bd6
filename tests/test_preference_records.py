"""Preference records (``train --method dpo``): every accepted layout parses to the same sample; bad ones name why."""

import pytest

from fastvlm_video.data.records import Message, parse_record
from fastvlm_video.errors import ConfigError, RecordError
from fastvlm_video.train.args import parse_train_args

QUESTION = "Which way?"
EXPECTED = [Message("user", f"<image>\n{QUESTION}"), Message("assistant", "left")]

LAYOUTS = {
    "llava": {"video": "a.mp4", "conversations": [{"from": "human", "value": f"<video>\n{QUESTION}"}], "chosen": "left", "rejected": "up"},
    "messages": {"videos": ["a.mp4"], "messages": [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}],
                 "chosen": "left", "rejected": "up"},
    "trl_conversational": {"images": ["a.mp4"], "prompt": [{"role": "user", "content": f"<image>\n{QUESTION}"}],
                           "chosen": [{"role": "assistant", "content": "left"}], "rejected": [{"role": "assistant", "content": "up"}]},
    "trl_standard": {"video": "a.mp4", "prompt": QUESTION, "chosen": "left", "rejected": "up"},
    "rlaif_v": {"image": "a.mp4", "question": QUESTION, "chosen": "left", "rejected": "up"},
    "hound_dpo": {"video": "a.mp4", "prompt": QUESTION, "answer": "left", "chosen": "left", "rejected": "up",
                  "chosen_score": 5.0, "rejected_score": 1.0},
    "assistant_dict": {"video": "a.mp4", "prompt": QUESTION, "chosen": {"role": "assistant", "content": [{"type": "text", "text": "left"}]},
                       "rejected": {"from": "gpt", "value": "up"}},
}  # fmt: skip


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_gives_prompt_chosen_and_rejected(layout, tmp_path):
    sample = parse_record(LAYOUTS[layout], "pairs.json", 0, tmp_path)
    assert sample.messages == EXPECTED
    assert sample.rejected == "up"
    assert [(m.path, m.kind) for m in sample.media] == [(str(tmp_path / "a.mp4"), "video")]


def test_text_only_and_image_plus_video_pairs(tmp_path):
    text = parse_record({"prompt": "2+2?", "chosen": "4", "rejected": "5"}, "p.json", 0, tmp_path)
    assert text.media == [] and text.messages[-1] == Message("assistant", "4") and text.rejected == "5"
    mixed = {"images": ["x.png"], "videos": ["v.mp4"], "messages": [{"role": "user", "content": "<video>\n<image>\nSame?"}],
             "chosen": "yes", "rejected": "no"}  # fmt: skip
    sample = parse_record(mixed, "p.json", 0, tmp_path)
    assert [m.kind for m in sample.media] == ["video", "image"]


def test_an_sft_record_has_no_rejected_answer(tmp_path):
    record = {"video": "a.mp4", "conversations": [{"from": "human", "value": "<video>\nQ"}, {"from": "gpt", "value": "left"}]}
    assert parse_record(record, "p.json", 0, tmp_path).rejected is None


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"prompt": "Q", "chosen": "a"}, "needs both 'chosen' and 'rejected'"),
        ({"prompt": "Q", "chosen": "a", "rejected": "a "}, "the same answer"),
        ({"prompt": "Q", "chosen": "", "rejected": "b"}, "'chosen' is empty"),
        ({"prompt": "Q", "chosen": 3, "rejected": "b"}, "'chosen' must be a string"),
        ({"prompt": "Q", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"}, "role 'assistant'"),
        ({"prompt": "Q", "chosen": "a", "rejected": "<image>\nb"}, "not in 'rejected'"),
        ({"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "a"}], "chosen": "a", "rejected": "b"},
         "must end with the user's turn"),
        ({"chosen": "a", "rejected": "b"}, "'prompt' / 'question'"),
    ],
)  # fmt: skip
def test_bad_pairs_name_the_reason(record, reason, tmp_path):
    with pytest.raises(RecordError, match=reason):
        parse_record(record, "p.json", 3, tmp_path)


BASE = ["--model_name_or_path", "m", "--data_path", "d.json", "--output_dir", "o", "--use_cpu", "true"]


def test_method_flags_parse_and_bad_values_are_refused():
    *_, args = parse_train_args(BASE)
    assert args.method == "sft"
    *_, args = parse_train_args(BASE + ["--method", "dpo", "--loss_type", "ipo", "--beta", "0.5"])
    assert (args.method, args.loss_type, args.beta) == ("dpo", "ipo", 0.5)
    for extra, message in [
        (["--method", "ppo"], "--method 'ppo'"),
        (["--method", "dpo", "--loss_type", "kto"], "--loss_type 'kto'"),
        (["--method", "dpo", "--beta", "0"], "positive beta"),
        (["--method", "dpo", "--reference", "adapter_off"], "needs --lora_enable"),
        (["--method", "dpo", "--packing", "true"], "--packing"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_train_args(BASE + extra)

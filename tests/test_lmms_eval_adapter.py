"""The lmms-eval adapter (``infer/lmms_eval_model.py``): registered through lmms-eval's entry point, it
answers and scores exactly like ``Predictor`` and honours ``video_config.json``.

lmms-eval 0.7.3 cannot share our environment (it pins av<16 and downgrades other packages), so this
runs in a separate one (docs/evaluation.md: "lmms-eval"); here it skips with that reason.
"""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("lmms_eval", reason="lmms-eval is not installed here: it lives in its own environment (docs/evaluation.md)")

from lmms_eval.api.instance import Instance  # noqa: E402

from fastvlm_video.demo.synthetic import moving_square_frames, write_video  # noqa: E402
from fastvlm_video.infer.choices import score_choices  # noqa: E402
from fastvlm_video.infer.predictor import Predictor  # noqa: E402

QUESTION = "Which way does the square move?"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("lmms")
    model = root / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "video_config.json").write_text(json.dumps({"num_frames": 3}))
    clip = write_video(root / "left.mp4", moving_square_frames("left", np.random.default_rng(5), num_frames=12), fps=8, gop=8)
    return model, clip


def instances(kind, clip, target_or_kwargs):
    docs = {"t": {"test": [{"video": str(clip)}]}}
    args = (QUESTION, target_or_kwargs, lambda doc: [doc["video"]], 0, "t", "test")
    return docs, [Instance(request_type=kind, arguments=args, idx=0, metadata={"task": "t", "doc_id": 0, "repeats": 1})]


def test_entry_point_resolves_to_the_adapter():
    from lmms_eval.models import get_model

    from fastvlm_video.infer.lmms_eval_model import FastVlmVideo

    assert get_model("fastvlm_video") is FastVlmVideo


def test_adapter_answers_and_scores_like_the_predictor_with_the_checkpoint_video_config(setup):
    from lmms_eval.models import get_model

    model_dir, clip = setup
    lm = get_model("fastvlm_video").create_from_arg_string(f"pretrained={model_dir},device=cpu")
    assert lm.predictor.video.num_frames == 3  # from video_config.json
    predictor = Predictor.from_pretrained(model_dir, device="cpu")

    lm.task_dict, requests = instances("generate_until", clip, {"max_new_tokens": 5, "until": ["\n\n"]})
    assert lm.generate_until(requests) == [predictor.ask(clip, QUESTION, max_new_tokens=5).split("\n\n")[0]]

    lm.task_dict, requests = instances("loglikelihood", clip, " left")
    [(logprob, greedy)] = lm.loglikelihood(requests)
    expected = score_choices(predictor, predictor.prompt_for(clip, QUESTION), [" left"], end=False)
    assert logprob == pytest.approx(expected.logprobs[0]) and greedy == expected.greedy[0]
    assert lm.predictor.prompt_for(clip, QUESTION).pixel_values.shape[0] == 3


TASK_YAML = """task: fastvlm_tiny_video
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 4
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""
TASK_UTILS = """def doc_to_visual(doc):
    return [doc["video"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"]
"""


def test_the_lmms_eval_command_runs_a_local_video_task_through_the_adapter(setup, tmp_path):
    """The whole CLI path, offline: a task defined in a local folder (--include_path), our model by name."""
    import os
    import subprocess
    import sys

    model_dir, clip = setup
    (tmp_path / "docs.json").write_text(json.dumps([{"video": str(clip), "question": QUESTION, "answer": "left"}]))
    (tmp_path / "task.yaml").write_text(TASK_YAML.format(docs=tmp_path / "docs.json"))
    (tmp_path / "utils.py").write_text(TASK_UTILS)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "fastvlm_video", "--model_args", f"pretrained={model_dir},device=cpu",
           "--tasks", "fastvlm_tiny_video", "--include_path", str(tmp_path), "--batch_size", "1",
           "--output_path", str(tmp_path / "out"), "--log_samples"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "fastvlm_tiny_video" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    [samples] = list((tmp_path / "out").rglob("*samples_fastvlm_tiny_video.jsonl"))
    row = json.loads(samples.read_text().splitlines()[0])
    expected = Predictor.from_pretrained(model_dir, device="cpu").ask(clip, QUESTION, max_new_tokens=4)
    answer = row["filtered_resps"][0] if isinstance(row["filtered_resps"], list) else row["filtered_resps"]
    assert answer == expected  # lmms-eval received our predictor's answer, frames from video_config.json

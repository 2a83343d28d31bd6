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

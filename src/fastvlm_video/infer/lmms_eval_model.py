"""An lmms-eval model for our checkpoints: ``lmms-eval --model fastvlm_video --model_args pretrained=DIR``.

lmms-eval's generic Hugging Face model hands FastVLM no video (transformers' FastVLM processor drops
``videos=``). This adapter gives each request's videos and images to ``Predictor`` instead, so frames are
sampled, sized and tokenised exactly as in training, ``predict`` and ``evaluate`` — from the
checkpoint's ``video_config.json`` (``num_frames=`` / ``frame_sampling=`` in ``--model_args`` override it).

Registered through lmms-eval's entry-point group ``lmms_eval.models`` (see ``pyproject.toml``), so it is
found once ``fastvlm-video`` is installed in the same environment as lmms-eval. That environment must be
a separate one: lmms-eval 0.7.3 pins ``av<16`` and downgrades other packages (docs/evaluation.md).

- ``generate_until``: greedy (or sampled with ``temperature`` > 0) generation, cut at the ``until`` strings.
- ``loglikelihood``: log p(continuation | context) and whether greedy decoding would give it
  (``infer.choices.score_choices`` without ``<|im_end|>``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from tqdm import tqdm

from ..constants import IMAGE_TOKEN
from ..data.records import MediaRef, Message
from ..media.kinds import media_type
from .choices import score_choices
from .predictor import Predictor

MODEL_ID = "fastvlm_video"


def manifests() -> list[ModelManifest]:
    """The entry-point payload lmms-eval reads (group ``lmms_eval.models``)."""
    return [ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.FastVlmVideo", aliases=("fastvlm-video",))]


def _int_or_none(value) -> int | None:
    return None if value in (None, "", "None") else int(value)


class FastVlmVideo(lmms):
    is_simple = True

    def __init__(self, pretrained: str, device: str = "auto", num_frames=None, frame_sampling: str | None = None,
                 max_new_tokens: int = 256, batch_size: int = 1, **kwargs) -> None:  # fmt: skip
        super().__init__()
        self.predictor = Predictor.from_pretrained(
            pretrained, device=device, num_frames=_int_or_none(num_frames), frame_sampling=frame_sampling or None
        )
        self.max_new_tokens = int(max_new_tokens)
        self._images = tempfile.TemporaryDirectory(prefix="fastvlm-lmms-")

    def _media(self, visuals) -> list[MediaRef]:
        """Video paths stay paths; PIL images (image tasks) are written once as PNG for the shared loader."""
        refs = []
        for visual in visuals or []:
            if isinstance(visual, (str, Path)):
                refs.append(MediaRef(str(visual), media_type(visual)))
            elif hasattr(visual, "save"):
                path = Path(self._images.name) / f"{len(list(Path(self._images.name).iterdir()))}.png"
                visual.convert("RGB").save(path)
                refs.append(MediaRef(str(path), "image"))
            else:
                raise TypeError(f"unsupported visual {type(visual).__name__}: expected a file path or a PIL image")
        return refs

    def _prompt(self, context: str, visuals):
        media = self._media(visuals)
        text = (IMAGE_TOKEN + "\n") * len(media) + context.replace(IMAGE_TOKEN, "")
        return self.predictor.prepare([Message("user", text)], media)

    def _visuals(self, doc_to_visual, doc_id, task, split):
        return doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual else []

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers = []
        for request in tqdm(requests, desc="fastvlm_video", disable=self.rank != 0):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            gen_kwargs = dict(gen_kwargs or {})
            until = gen_kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            max_new_tokens = int(gen_kwargs.pop("max_new_tokens", self.max_new_tokens))
            sampling = {k: gen_kwargs[k] for k in ("temperature", "top_p") if gen_kwargs.get(k) is not None}
            prompt = self._prompt(context, self._visuals(doc_to_visual, doc_id, task, split))
            text = self.predictor.generate([prompt], max_new_tokens=max_new_tokens, **sampling)[0]
            for stop in until:
                text = text.split(stop)[0] if stop else text
            answers.append(text)
        return answers

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        results = []
        for request in tqdm(requests, desc="fastvlm_video loglikelihood", disable=self.rank != 0):
            context, doc_to_target, doc_to_visual, doc_id, task, split = request.args
            target = doc_to_target if isinstance(doc_to_target, str) else doc_to_target(self.task_dict[task][split][doc_id])
            prompt = self._prompt(context, self._visuals(doc_to_visual, doc_id, task, split))
            scores = score_choices(self.predictor, prompt, [str(target)], end=False)
            results.append((scores.logprobs[0], scores.greedy[0]))
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("fastvlm_video answers one round per request; multi-round tasks are not supported")

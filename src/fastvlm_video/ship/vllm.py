"""Requests for vLLM that show it exactly what ``predict`` shows the model.

vLLM (0.32, CPU build) runs an exported standard checkpoint through its transformers backend (the stock
``FastVlmForConditionalGeneration``). A video goes in as its frames: one ``<image>`` per frame, laid side by
side as training lays them, each frame the S x S frame ``predict`` decoded (so vLLM's image processor, pad
to square and resize to S, leaves it unchanged). ``scripts/vllm_answer.py`` runs them in vLLM's environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..constants import IMAGE_TOKEN
from ..data.chat import ChatEncoder
from ..data.records import Message


def vllm_inputs(predictor, questions: Sequence[tuple[str | Path, str]], out: str | Path, max_tokens: int = 256) -> list[dict]:
    """``(media path, question)`` pairs -> vLLM requests: the prompt with one ``<image>`` per frame and the
    frames saved as PNG files under ``out`` (``{"prompt", "frames", "max_tokens"}`` each)."""
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    one_per_frame = ChatEncoder(predictor.tokenizer, tokens_per_frame=1)  # vLLM expands each <image> to K tokens
    items = []
    for i, (media, question) in enumerate(questions):
        frames = predictor.prompt_for(media, question).pixel_values
        paths = []
        for j, frame in enumerate(frames):
            paths.append(str(out / f"{i:05d}_{j:03d}.png"))
            Image.fromarray(frame.permute(1, 2, 0).numpy()).save(paths[-1])
        text = question if IMAGE_TOKEN in question else f"{IMAGE_TOKEN}\n{question}"
        prompt = one_per_frame.render([Message("user", text)], [len(frames)], add_generation_prompt=True)
        items.append({"prompt": prompt, "frames": paths, "max_tokens": max_tokens})
    return items


ANSWER_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "vllm_answer.py"


def vllm_token_ids(python: str | Path, model: str | Path, items: list[dict], work: str | Path) -> list[list[int]]:
    """Greedy token ids from vLLM (run with ``python``, the interpreter of vLLM's environment) for ``items``.

    Token ids, not text: vLLM's incremental detokenizer holds back a trailing half character that
    ``predict``'s one-shot decode shows as U+FFFD, so equal ids are the exact comparison."""
    import json
    import subprocess

    work = Path(work)
    (work / "vllm_inputs.json").write_text(json.dumps(items))
    run = subprocess.run([str(python), str(ANSWER_SCRIPT), "--model", str(model), "--inputs", str(work / "vllm_inputs.json"),
                          "--out", str(work / "vllm_answers.json")], capture_output=True, text=True, timeout=3600)  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"vLLM failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    return json.loads((work / "vllm_answers.json").read_text())["token_ids"]

"""The model card (``README.md``) ``push`` uploads: what the model is, how it was trained, how to use it.

Facts come from the checkpoint itself: ``config.json`` / ``adapter_config.json``, ``video_config.json``,
``training_summary.json`` (written by ``train``: what ran, not what was asked for) and every ``evaluate``
``metrics.json`` for it (its data file, split, count and scoring; a test split first). The card names no
local path: a local base model is named by its folder only. Its plain-transformers code is
``PLAIN_TRANSFORMERS``, the snippet docs/models.md shows, run as written by the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..model.load import detect_format, video_config_of
from ..model.lora import adapter_base
from ..train.summary import objective_line, read_summary

METRICS_NAME = "metrics.json"


SPLITS = (("test", "test"), ("val", "validation"), ("dev", "validation"), ("train", "train"))
SCORING = {"generate": "generated answers (`--score generate`)", "choices": "log-likelihood of the choices (`--score choices`)"}
# The tested plain-transformers code (docs/models.md shows the same text; tests/test_ship_card.py runs it).
PLAIN_TRANSFORMERS = """\
import json

import av
import numpy as np
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

model_dir, video, question = "runs/ft", "clip.mp4", "What happens?"
settings = json.load(open(f"{model_dir}/video_config.json"))  # frames and frame size the model was trained with
num_frames, size = settings["num_frames"], settings["image_size"]
processor = AutoProcessor.from_pretrained(model_dir)
model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()

with av.open(video) as container:  # decode every frame, resized (bicubic) so the longer side is `size`
    stream = container.streams.video[0]
    scale = size / max(stream.width, stream.height)
    width, height = max(1, round(stream.width * scale)), max(1, round(stream.height * scale))
    frames = [f.to_image(width=width, height=height, interpolation="BICUBIC") for f in container.decode(stream)]
frames = [frames[i] for i in np.linspace(0, len(frames) - 1, num_frames, dtype=int)]  # uniform sampling

messages = [{"role": "user", "content": "<image>" * num_frames + "\\n" + question}]
text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
inputs = processor(images=frames, text=text, return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits
answer = model.generate(**inputs, max_new_tokens=256, do_sample=False)
print(processor.decode(answer[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
"""


@dataclass
class Evaluation:
    """One ``evaluate`` run of the model: where its numbers came from."""

    folder: Path
    metrics: dict
    data: list[str]  # the data files, as parent/name (no local path)
    split: str
    samples: int | None
    scoring: str
    mtime: float


def split_of(data_files: list[str]) -> str:
    """test / validation / train from the data files' names (``prepare`` writes test.json, val.json, train.json)."""
    found = set()
    for name in data_files:
        stem = Path(name).stem.lower()
        found.add(next((split for key, split in SPLITS if key in stem), "unknown"))
    return found.pop() if len(found) == 1 else "mixed"


def short_name(path: str) -> str:
    """``parent/name`` of a path: enough to tell files apart, no local directory."""
    parts = Path(path).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else str(path)


def evaluations(model_dir: str | Path) -> list[Evaluation]:
    """Every ``evaluate`` output for this model (``metrics.json`` under it or beside it naming it): a test split
    first, then validation, the others last; newest first within each."""
    model_dir = Path(model_dir).resolve()
    found = []
    for path in set(model_dir.rglob(METRICS_NAME)) | set(model_dir.parent.glob(f"*/{METRICS_NAME}")):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        settings = metrics.get("settings") or {}
        model = settings.get("model")
        if not model or Path(model).resolve() != model_dir:
            continue
        data = settings.get("data") or []
        data = [short_name(d) for d in ([data] if isinstance(data, str) else data)]
        found.append(Evaluation(path.parent, metrics, data, split_of(data) if data else "unknown",
                                metrics.get("num_samples"), settings.get("score", "generate"), path.stat().st_mtime))
    order = {"test": 0, "validation": 1}
    return sorted(found, key=lambda e: (order.get(e.split, 2), -e.mtime))


def local_path(name: str | None) -> bool:
    """A base model given as a local folder (not a Hub id ``owner/name``)."""
    return bool(name) and (Path(name).exists() or Path(name).is_absolute() or name.count("/") != 1)


def public_name(name: str | None) -> str | None:
    """A Hub id as it is; a local folder by its name only (the card and uploaded files name no local path)."""
    return f"{Path(name).name} (a local checkpoint)" if local_path(name) else name


def _table(rows: list[list]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in body])


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(model_dir: str | Path, repo: str, base_model: str | None = None) -> str:
    """The card's Markdown (with Hub metadata) for the checkpoint in ``model_dir``, to be pushed as ``repo``."""
    model_dir = Path(model_dir)
    fmt = detect_format(model_dir)
    summary = read_summary(model_dir) or {}
    video = video_config_of(model_dir)
    base = base_model or summary.get("base_model") or (str(adapter_base(model_dir)) if fmt == "lora" else None)
    hub_base = None if local_path(base) else base  # only a Hub id is metadata
    meta = [
        "---",
        "library_name: " + ("peft" if fmt == "lora" else "transformers"),
        "pipeline_tag: video-text-to-text",
    ]
    meta += [f"base_model: {hub_base}"] if hub_base else []
    meta += ["tags:", "- fastvlm", "- fastvlm-video", "- video", "---", ""]
    out = meta + [f"# {repo.split('/')[-1]}", ""]
    out += [
        f"FastVLM (FastViTHD vision tower + Qwen2) fine-tuned on video with fastvlm-video: "
        f"a video is {video.num_frames} frames sampled {video.frame_sampling}ly, each frame an image of {video.image_size} px "
        f"({video.tokens_per_frame} visual tokens). Format: `{fmt}`"
        + (" (a LoRA adapter: needs its base model)." if fmt == "lora" else "."),
        "",
        f"- Base model: `{public_name(base) or 'unknown (no training_summary.json)'}`",
    ]
    if summary:
        trained = summary["trained"]
        lora = summary.get("lora")
        out += [
            f"- Training: {summary['method']}"
            + (f" (r={lora['r']}, alpha={lora['alpha']}, targets {lora['target_modules']})" if lora else "")
            + f"; LLM {trained['llm']}, projector {trained['projector']}, vision tower {trained['vision_tower']}",
            *([line] if (line := objective_line(summary)) else []),
            ran(summary) + f", learning rate {_number(summary['learning_rate'])}, final train loss "
            f"{_number(summary['train_loss'])}"
            + (
                f", validation loss {_number(summary['eval_loss'])}"
                if summary.get("eval_loss") is not None
                else ""
            ),
            "",
            "## Data",
            "",
        ]
        rows = [["split", "samples", "videos", "images", "text only", "distinct answers"]]
        for split, data in summary["data"].items():
            rows.append(
                [
                    split,
                    data["samples"],
                    data["videos"],
                    data["images"],
                    data["text_only"],
                    data["distinct_answers"],
                ]
            )
        out += [_table(rows), ""]
        classes = summary["data"]["train"].get("classes")
        if classes:
            out += [
                "Classes (training answers): "
                + ", ".join(f"{name} ({count})" for name, count in classes.items()),
                "",
            ]
    out += [
        "## Video settings",
        "",
        _table(
            [["setting", "value"]]
            + [[k, v] for k, v in vars(video).items()]
            + [["tokens per frame", video.tokens_per_frame]]
        ),
        "",
    ]
    out += evaluation_section(evaluations(model_dir))
    out += usage(repo)
    return "\n".join(out) + "\n"


def ran(summary: dict) -> str:
    """'300 optimizer steps (27.27 epochs, 2,400 samples seen, 8 per step)': what ran, from the Trainer's state."""
    if "steps" not in summary:  # a summary written before steps were recorded: only the request is known
        return f"- Requested epochs {_number(summary.get('epochs'))} (steps run not recorded)"
    return (f"- {summary['steps']:,} optimizer steps ({_number(summary['epochs'])} epochs, "
            f"{summary['samples_seen']:,} samples seen, {summary['batch_size']} per step)")


def evaluation_section(runs: list[Evaluation]) -> list[str]:
    """The evaluation(s): the first (a test split when there is one) in full, each with its data and scoring."""
    if not runs:
        return []
    first, rest = runs[0], runs[1:]
    numbers = [[k, _number(v)] for k, v in first.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = [
        "## Evaluation",
        "",
        f"`fastvlm-video evaluate` on {', '.join(f'`{d}`' for d in first.data) or 'unknown data'} (split: {first.split}, "
        f"{first.samples} samples; scoring: {SCORING.get(first.scoring, first.scoring)}):",
        "",
        _table([["metric", "value"]] + numbers),
        "",
    ]
    if first.split != "test":
        out += ["No evaluation on a test split was found: the numbers above are not a held-out test.", ""]
    if rest:
        rows = [["data", "split", "samples", "scoring", "accuracy"]]
        rows += [[", ".join(e.data), e.split, e.samples, f"`--score {e.scoring}`", _number(e.metrics.get("accuracy"))] for e in rest]
        out += ["Other evaluations of this model:", "", _table(rows), ""]
    return out


INSTALL = [
    "# fastvlm-video is not published on PyPI: install it from a checkout of its source",
    "pip install ./fastvlm-video          # the folder holding its pyproject.toml",
]


def usage(repo: str) -> list[str]:
    name = repo.split("/")[-1]
    return [
        "## Use",
        "",
        "With fastvlm-video (same frames, pixels and prompt as in training):",
        "",
        "```bash",
        *INSTALL,
        f"hf download {repo} --local-dir {name}",
        f'fastvlm-video predict --model {name} --input clip.mp4 --prompt "What happens?"',
        "```",
        "",
        f"With plain transformers and PyAV, after `hf download {repo} --local-dir {name}` (the same input ids and "
        "pixels as `predict` for uniform sampling; rotation metadata of phone clips is not applied here):",
        "",
        "```python",
        PLAIN_TRANSFORMERS.replace('"runs/ft"', json.dumps(name)).rstrip("\n"),
        "```",
        "",
        "On a Mac with MLX (see fastvlm-video's docs/shipping.md):",
        "",
        "```bash",
        INSTALL[0],
        "pip install './fastvlm-video[mlx]'",
        f"fastvlm-video export {name} {name}-mlx --format mlx --quantize 8",
        f"python -c \"from fastvlm_video.ship.mlx_runtime import ask; print(ask('{name}-mlx', 'clip.mp4', 'What happens?'))\"",
        "```",
    ]

"""The model card (``README.md``) ``push`` uploads: what the model is, how it was trained, how to use it.

Facts come from the checkpoint itself: ``config.json`` / ``adapter_config.json``, ``video_config.json``,
``training_summary.json`` (written by ``train``) and the latest ``evaluate`` ``metrics.json`` for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..model.load import detect_format, video_config_of
from ..model.lora import adapter_base
from ..train.summary import objective_line, read_summary

METRICS_NAME = "metrics.json"


def latest_metrics(model_dir: str | Path) -> tuple[Path, dict] | None:
    """The newest ``evaluate`` output for this model: ``metrics.json`` under it or beside it naming it."""
    model_dir = Path(model_dir).resolve()
    found = []
    for path in list(model_dir.rglob(METRICS_NAME)) + list(model_dir.parent.glob(f"*/{METRICS_NAME}")):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        model = (metrics.get("settings") or {}).get("model")
        if model and Path(model).resolve() == model_dir:
            found.append((path.stat().st_mtime, path, metrics))
    return max(found)[1:] if found else None


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
    base = base_model or summary.get("base_model") or (adapter_base(model_dir) if fmt == "lora" else None)
    hub_base = (
        base if base and not Path(base).exists() and base.count("/") == 1 else None
    )  # only a Hub id is metadata
    meta = [
        "---",
        "library_name: " + ("peft" if fmt == "lora" else "transformers"),
        "pipeline_tag: video-text-to-text",
    ]
    meta += [f"base_model: {hub_base}"] if hub_base else []
    meta += ["tags:", "- fastvlm", "- fastvlm-video", "- video", "---", ""]
    out = meta + [f"# {repo.split('/')[-1]}", ""]
    out += [
        f"FastVLM (FastViTHD vision tower + Qwen2) fine-tuned on video with [fastvlm-video](https://pypi.org/project/fastvlm-video/): "
        f"a video is {video.num_frames} frames sampled {video.frame_sampling}ly, each frame an image of {video.image_size} px "
        f"({video.tokens_per_frame} visual tokens). Format: `{fmt}`"
        + (" (a LoRA adapter: needs its base model)." if fmt == "lora" else "."),
        "",
        f"- Base model: `{base or 'unknown (no training_summary.json)'}`",
    ]
    if summary:
        trained = summary["trained"]
        lora = summary.get("lora")
        out += [
            f"- Training: {summary['method']}"
            + (f" (r={lora['r']}, alpha={lora['alpha']}, targets {lora['target_modules']})" if lora else "")
            + f"; LLM {trained['llm']}, projector {trained['projector']}, vision tower {trained['vision_tower']}",
            *([line] if (line := objective_line(summary)) else []),
            f"- Epochs {_number(summary['epochs'])}, learning rate {_number(summary['learning_rate'])}, final train loss "
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
    metrics = latest_metrics(model_dir)
    if metrics:
        path, values = metrics
        numbers = [
            [k, _number(v)]
            for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        out += [
            "## Evaluation",
            "",
            f"Latest `fastvlm-video evaluate` ({path.parent.name}/{path.name}):",
            "",
            _table([["metric", "value"]] + numbers),
            "",
        ]
    out += usage(repo, video.num_frames)
    return "\n".join(out) + "\n"


def usage(repo: str, frames: int) -> list[str]:
    name = repo.split("/")[-1]
    return [
        "## Use",
        "",
        "With fastvlm-video (same frames, pixels and prompt as in training):",
        "",
        "```bash",
        "pip install fastvlm-video",
        f"hf download {repo} --local-dir {name}",
        f'fastvlm-video predict --model {name} --input clip.mp4 --prompt "What happens in the video?"',
        "```",
        "",
        "With plain transformers (frames as images; `fastvlm_video.load` gives the exact frames):",
        "",
        "```python",
        "from transformers import AutoModelForImageTextToText, AutoProcessor",
        f'model = AutoModelForImageTextToText.from_pretrained("{repo}")',
        f'processor = AutoProcessor.from_pretrained("{repo}")',
        f"frames = [...]  # {frames} PIL images sampled uniformly from the video",
        'messages = [{"role": "user", "content": [{"type": "image"}] * len(frames) + [{"type": "text", "text": "What happens?"}]}]',
        "prompt = processor.apply_chat_template(messages, add_generation_prompt=True)",
        'inputs = processor(images=frames, text=prompt, return_tensors="pt")',
        "print(processor.decode(model.generate(**inputs, max_new_tokens=64)[0], skip_special_tokens=True))",
        "```",
        "",
        "On a Mac with MLX (see fastvlm-video's docs/shipping.md):",
        "",
        "```bash",
        "pip install 'fastvlm-video[mlx]'",
        f"fastvlm-video export {name} {name}-mlx --format mlx --quantize 8",
        f"python -c \"from fastvlm_video.ship.mlx_runtime import ask; print(ask('{name}-mlx', 'clip.mp4', 'What happens?'))\"",
        "```",
    ]

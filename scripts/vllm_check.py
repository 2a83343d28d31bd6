"""vLLM vs predict on a data file: the same greedy answers, token for token? (run with fastvlm-video's python)

    FASTVLM_VIDEO_VLLM_PYTHON=.venv-vllm/bin/python python scripts/vllm_check.py --model runs/demo/vllm \\
        --data runs/demo/data/test.json --media_folder runs/demo/data --out benchmarks/results/vllm_check.txt

``--model`` must be a standard checkpoint written by this version's ``export`` (its processor carries the
token count vLLM reads). Prints one line per question that differs and a summary; exit 1 if any differs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fastvlm_video.data.records import load_samples  # noqa: E402
from fastvlm_video.infer.predictor import Predictor  # noqa: E402
from fastvlm_video.ship.vllm import vllm_inputs, vllm_token_ids  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--media_folder", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=0, help="first N questions (0: all)")
    parser.add_argument("--max_tokens", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    python = os.environ.get("FASTVLM_VIDEO_VLLM_PYTHON")
    if not python:
        parser.error("set FASTVLM_VIDEO_VLLM_PYTHON to the python of vLLM's environment (scripts/vllm_check.sh builds one)")
    samples = load_samples(args.data, args.media_folder)[0][: args.limit or None]
    questions = [(s.media[0].path, s.messages[0].content) for s in samples]
    predictor = Predictor.from_pretrained(args.model, device="cpu")
    expected = [predictor.ask(media, question, max_new_tokens=args.max_tokens) for media, question in questions]
    with tempfile.TemporaryDirectory() as tmp:
        items = vllm_inputs(predictor, questions, Path(tmp) / "frames", args.max_tokens)
        ids = vllm_token_ids(python, args.model, items, tmp)
    got = [predictor.tokenizer.decode(t, skip_special_tokens=True).strip() for t in ids]
    same = sum(a == b for a, b in zip(got, expected))
    references = [s.messages[-1].content.strip() for s in samples]
    lines = [f"# vllm_check ({date.today()}, {platform.machine()}, model {args.model}, data {args.data})", ""]
    lines += [f"differs: {s.id}: vLLM {a!r} vs predict {b!r}" for s, a, b in zip(samples, got, expected) if a != b]
    lines += [f"{same} of {len(samples)} answers identical to predict's (greedy, max_tokens {args.max_tokens}); "
              f"vLLM right on {sum(a == r for a, r in zip(got, references))}, predict on "
              f"{sum(b == r for b, r in zip(expected, references))} of {len(samples)}"]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if same == len(samples) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Choose the demo's video-stage recipe on the VALIDATION clips only (issue 19 item 7); test is never read.

    # stage 1 and the data first (any demo folder whose data/ and image_model/ exist, e.g. `make demo`'s)
    PYTHONPATH=src python benchmarks/demo_recipe.py run --demo runs/demo --epochs 3 --seed 0
    PYTHONPATH=src python benchmarks/demo_recipe.py run --demo runs/demo --epochs 5 --seed 0 --trained runs/demo/model
    PYTHONPATH=src python benchmarks/demo_recipe.py summary --demo runs/demo --out benchmarks/results/demo_recipe.md

`run` trains stage 2 (videos) from the folder's stage-1 model with one candidate setting, as `run_demo` does
(`_train_argv`, the frozen tower, the feature cache shared between candidates), into DEMO/probe/<candidate>,
then scores it by generation on data/val.json (80 clips, held-out phases: no frame shared with training)
and writes DEMO/probe/<candidate>/val.json. Candidates can run in parallel (one process each).
`summary` tabulates every candidate and picks the highest validation accuracy (ties: fewer epochs, then
the lower learning rate). data/test.json is never opened here: `make demo` reports test once, with the
recipe chosen here. Timings are wall seconds on a shared machine (other processes ran beside): compare
them only within one table, and not at all as the demo's speed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from fastvlm_video.demo.run import VIDEO_BATCH, _train_argv
from fastvlm_video.infer.evaluate import evaluate_checkpoint
from fastvlm_video.train.args import parse_train_args
from fastvlm_video.train.run import train


def candidate_name(epochs: int, lr: float, seed: int, tower: str) -> str:
    return f"epochs{epochs}_lr{lr:g}_seed{seed}_tower-{tower}"


def run_candidate(
    demo: Path, epochs: int, lr: float, seed: int, tower: str, frames: int, threads: int, trained: Path | None = None
) -> dict:
    """Stage 2 with one setting, then generation accuracy on the validation clips. ``trained``: a stage-2
    model already trained with exactly this setting (e.g. the demo's own DEMO/model): scored, not retrained."""
    data, name = demo / "data", candidate_name(epochs, lr, seed, tower)
    out = demo / "probe" / name
    if not (demo / "image_model" / "model.safetensors").is_file() or not (data / "val.json").is_file():
        raise SystemExit(f"{demo}: no image_model/ or data/val.json; run `fastvlm-video demo --out {demo}` (or its stage 1) first")
    argv = _train_argv(demo / "image_model", data, "train", out / "model", epochs, VIDEO_BATCH, frames, seed)
    argv[argv.index("--learning_rate") + 1] = f"{lr:g}"
    argv += ["--cpu_threads", str(threads)]
    if tower == "trained":
        argv += ["--unfreeze_mm_vision_tower", "true", "--vision_tower_batchnorm", "batch"]
    else:
        argv += ["--feature_cache", str(demo / "probe" / "feature_cache")]  # one frozen tower: shared
    started = time.perf_counter()
    if trained is None:
        result = train(*parse_train_args(argv))
        eval_loss, train_loss, model = result.eval_loss, result.train_loss, out / "model"
    else:
        summary = json.loads((trained / "training_summary.json").read_text())
        eval_loss, train_loss, model = summary.get("eval_loss"), summary.get("train_loss"), trained
    seconds = time.perf_counter() - started
    evaluation = evaluate_checkpoint(
        model, data / "val.json", data, out / "eval_val",
        device="cpu", semantic=False, batch_size=16, max_new_tokens=4, overwrite=True,
    )  # fmt: skip
    state = model / "trainer_state.json"
    history = json.loads(state.read_text())["log_history"] if state.is_file() else []
    eval_losses = [round(e["eval_loss"], 4) for e in history if "eval_loss" in e]
    row = {
        "candidate": name, "epochs": epochs, "learning_rate": lr, "seed": seed, "tower": tower, "frames": frames,
        "cpu_threads": threads or "free cores", "val_accuracy": evaluation["accuracy"], "num_val": evaluation["num_scored"],
        "val_eval_loss": None if eval_loss is None else round(eval_loss, 4), "eval_losses": eval_losses,
        "train_loss": None if train_loss is None else round(train_loss, 4),
        "stage2_seconds": round(seconds, 1) if trained is None else "(trained by the demo)", "model": str(model),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }  # fmt: skip
    (out / "val.json").write_text(json.dumps(row, indent=1) + "\n")
    return row


def load_rows(demo: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((demo / "probe").glob("*/val.json"))]


def summary(demo: Path) -> str:
    rows = load_rows(demo)
    if not rows:
        raise SystemExit(f"{demo}/probe: no candidate has run yet (use `run`)")
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["epochs"], -r["learning_rate"]))
    lines = [
        f"# Demo video-stage recipe, chosen on validation ({rows[0]['num_val']} clips, held-out phases); test not read",
        "",
        "`benchmarks/demo_recipe.py` (stage 2 from one stage-1 model; 2 shared CPU cores, other work running beside:",
        "seconds compare within this table only).",
        "",
        "| candidate | epochs | lr | seed | tower | threads | val accuracy | val eval loss per epoch (last: final) | stage 2 seconds |",
        "|---|---:|---:|---:|---|---|---:|---|---:|",
    ]
    for r in rows:
        mark = " **(chosen)**" if r is best else ""
        lines.append(
            f"| {r['candidate']}{mark} | {r['epochs']} | {r['learning_rate']:g} | {r['seed']} | {r['tower']} | {r['cpu_threads']} "
            f"| {r['val_accuracy']:.4f} | {', '.join(map(str, r['eval_losses']))} | {r['stage2_seconds']} |"
        )
    lines += ["", f"Chosen: {best['candidate']} (highest validation accuracy; ties go to fewer epochs, then lower lr)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "summary"])
    parser.add_argument("--demo", type=Path, required=True, help="a demo folder with data/ and image_model/")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tower", choices=["frozen", "trained"], default="frozen")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--cpu_threads", type=int, default=0, help="0 follows the free cores, as the demo")
    parser.add_argument("--trained", type=Path, help="run: score this stage-2 model (trained with exactly these settings) instead of training")
    parser.add_argument("--out", type=Path, help="summary: also write the table here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.action == "run":
        print(json.dumps(run_candidate(args.demo, args.epochs, args.lr, args.seed, args.tower, args.frames, args.cpu_threads, args.trained)))
        return 0
    table = summary(args.demo)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
        args.out.with_suffix(".json").write_text(json.dumps(load_rows(args.demo), indent=1) + "\n")
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

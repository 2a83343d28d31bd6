"""fastvlm-video evaluate: answer every sample of a test file, then write predictions.jsonl (as it goes),
metrics.json and report.html into --out. An interrupted run continues with --resume.
Exits 1 when no sample could be scored (every media file unreadable).
Multiple-choice benchmarks (MVBench, Video-MME, TempCompass) are read in their published local layout.

examples:
  fastvlm-video evaluate --model runs/ft --data data/test.json --media_folder clips --out runs/ft/eval
  fastvlm-video evaluate --model runs/ft --data data/test.json --media_folder clips --out runs/ft/eval \\
      --task classification --batch_size 16 --resume
  fastvlm-video evaluate --model runs/ft --data MVBench/json --media_folder MVBench/video --out runs/ft/mvbench
  fastvlm-video evaluate --model runs/ft --data data/test.json --media_folder clips --out runs/ft/eval-ll --score choices
  fastvlm-video evaluate --model runs/ft --data data/val.json data/test.json --media_folder clips --out runs/ft/both
  torchrun --nproc_per_node 8 -m fastvlm_video evaluate --model runs/ft --data data/test.json --media_folder clips \\
      --out runs/ft/eval          # 8 GPUs: each takes 1/8 of the questions; one predictions.jsonl
  fastvlm-video evaluate --model runs/ft --data Video-MME/videomme/test-00000-of-00001.parquet --media_folder Video-MME/data \\
      --subtitles Video-MME/subtitle --answer_rule lmms-eval --out runs/ft/videomme-subs
  fastvlm-video evaluate --model runs/ft --data TempCompass/questions --media_folder TempCompass/videos \\
      --judge my_judges:gpt35 --out runs/ft/tempcompass
"""

import argparse

NAME = "evaluate"
HELP = "batch inference on a test set: predictions.jsonl, metrics.json and an HTML report"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", required=True, help="checkpoint directory")
    parser.add_argument("--data", required=True, nargs="+", action="extend",
                        help="test records (LLaVA JSON/JSONL or messages format); several files: one predictions.jsonl "
                        "with a 'source' column, metrics per file and overall")  # fmt: skip
    parser.add_argument("--media_folder", "--image_folder", default=".", help="folder the media paths are relative to")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--limit", type=int, help="only the first N samples")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--decode_threads", type=int, default=1,
                        help="threads decoding the next batch's media while the model runs (0: none; more on a GPU machine)")  # fmt: skip
    parser.add_argument("--num_frames", type=int, help="default: the checkpoint's video_config.json")
    parser.add_argument("--frame_sampling", choices=["uniform", "fps", "keyframe"], help="default: the checkpoint's")
    parser.add_argument("--frames_fps", type=float, help="frames per second of a folder of frames without fps.txt (default: the checkpoint's, 1)")
    parser.add_argument("--frame_cache", metavar="DIR", help="frame cache built at the checkpoint's video settings (`fastvlm-video cache`)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--task", default="auto", choices=["auto", "classification", "open"],
                        help="classification: answers are labels (per-class accuracy, macro-F1, confusion matrix); "
                        "auto: guess from the references")  # fmt: skip
    parser.add_argument("--format", dest="data_format", default="auto", choices=["auto", "records", "mvbench", "videomme", "tempcompass"],
                        help="benchmark layout of --data (a file, or MVBench's folder of per-task JSON); auto: by field names")  # fmt: skip
    parser.add_argument("--score", default="generate", choices=["generate", "choices"],
                        help="choices: rank the options (or the records' class answers) by log-likelihood, no text parsing")  # fmt: skip
    parser.add_argument("--choice_norm", default="sum", choices=["sum", "mean"], help="rank by summed (default) or per-token log-prob")
    parser.add_argument("--prompt_style", default="lmms-eval", choices=["lmms-eval", "official"],
                        help="benchmarks: lmms-eval's current wording (default) or the benchmark's own (docs/evaluation.md)")
    parser.add_argument("--answer_rule", default="default", choices=["default", "lmms-eval"],
                        help="how a generated answer becomes an option: ours (documented) or lmms-eval's, for comparable numbers")
    parser.add_argument("--subtitles", metavar="DIR", help="Video-MME with subtitles: its subtitle/ folder of <videoID>.srt")
    parser.add_argument("--judge", metavar="MODULE:FUNCTION",
                        help="an LLM judge (request dict -> text) for TempCompass captioning and answers its rules cannot read")
    parser.add_argument("--no_semantic", action="store_true", help="skip the sentence-embedding similarity")
    parser.add_argument("--skip_invalid_records", action="store_true", help="log and skip malformed records")
    parser.add_argument("--allow_outside_media_folder", action="store_true",
                        help="accept media paths that leave the media folder (../, absolute, symlinks out)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue OUT/predictions.jsonl, skipping done ids")
    group.add_argument("--overwrite", action="store_true", help="start again, replacing OUT/predictions.jsonl")


def run(args) -> int:
    import sys

    from ..infer.evaluate import evaluate_checkpoint
    from ..infer.predictions import METRICS, PREDICTIONS, REPORT
    from ..infer.report import headline_metrics

    metrics = evaluate_checkpoint(
        args.model, args.data, args.media_folder, args.out, limit=args.limit, device=args.device,
        semantic=not args.no_semantic, skip_invalid=args.skip_invalid_records, num_frames=args.num_frames,
        frame_sampling=args.frame_sampling, frames_fps=args.frames_fps, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
        resume=args.resume, overwrite=args.overwrite, task=args.task, allow_outside_media_folder=args.allow_outside_media_folder,
        data_format=args.data_format, score=args.score, norm=args.choice_norm, frame_cache=args.frame_cache,
        prompt_style=args.prompt_style, answer_rule=args.answer_rule, subtitles=args.subtitles, judge=args.judge,
        decode_threads=args.decode_threads,
    )  # fmt: skip
    if metrics is None:  # another rank than 0 of torchrun / accelerate launch: rank 0 reports
        return 0
    print(f"{metrics['num_scored']} samples scored, {metrics['num_errors']} with unreadable media")
    for reason, n in metrics.get("unscored", {}).items():
        print(f"  not scored: {n} x {reason}")
    for _, label, value in headline_metrics(metrics):
        print(f"  {label:<24} {value}")
    if metrics.get("num_unparsed"):
        print(f"  {metrics['num_unparsed']} answer(s) named no option (counted wrong; --score choices never has any)")
    for key, groups in metrics.get("by_group", {}).items():
        print(f"  accuracy by {key}:")
        for name, g in groups.items():
            accuracy = "    -" if g["accuracy"] is None else f"{100 * g['accuracy']:5.1f}"
            unscored = f", {g['unscored']} not scored" if g.get("unscored") else ""
            print(f"    {name:<32} {accuracy}%  ({g['correct']}/{g['num']}{unscored})")
    covers = metrics.get("task_mean_covers")
    if covers:
        missing = f" (no scored question: {', '.join(covers['missing'])})" if covers["missing"] else ""
        print(f"  the mean of task accuracies covers {covers['tasks']} of {covers['of']} tasks{missing}")
    for source, m in metrics.get("by_source", {}).items():
        print(f"  {source}: " + ", ".join(f"{label} {value}" for _, label, value in headline_metrics(m)[:2]))
    for note in metrics["notes"]:
        print(f"  note: {note}")
    print(f"\n{args.out}/{REPORT}\n{args.out}/{METRICS}\n{args.out}/{PREDICTIONS}")
    if metrics["num_scored"] == 0:
        print(f"error: no sample could be scored ({metrics['num_errors']} with unreadable media; reasons in {args.out}/{PREDICTIONS})", file=sys.stderr)
        return 1
    return 0

"""fastvlm-video demo: a tiny FastVLM trained on CPU on synthetic images, then videos, and evaluated.

examples:
  fastvlm-video demo --out runs/demo
  fastvlm-video demo --out runs/demo1 --num_video_frames 1     # one frame cannot tell the motion
  fastvlm-video demo --out runs/demo2 --no-feature_cache        # decode and run the tower every epoch
  fastvlm-video demo --out runs/post --post dpo                 # weak SFT start (OUT/sft) -> DPO (OUT/dpo), accuracy before/after
  fastvlm-video demo --out runs/post --post all                 # every post-training method from the same start
"""


import argparse

NAME = "demo"
HELP = "tiny FastVLM trained on synthetic images then videos, evaluated on CPU (no downloads)"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--out", default="runs/demo", help="output folder: data/, image_model/ (stage 1), model/ (stage 2), feature_cache/, eval/, metrics.json")
    parser.add_argument("--num_video_frames", type=int, default=8, help="frames per video (1 shows the model cannot tell motion)")
    parser.add_argument("--epochs", type=int, default=None, help="video fine-tuning epochs (default: the demo's value chosen on validation, 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu_threads", type=int, default=0,
                        help="torch threads: 0 follows the free cores (default, as train); N pins N so a run repeats to every digit")
    parser.add_argument("--frame_cache", choices=["raw", "png", "jpeg"],
                        help="cache the videos' frames first (OUT/frame_cache, this codec) and train + evaluate from it")
    parser.add_argument("--feature_cache", action=argparse.BooleanOptionalAction, default=True,
                        help="stage 2 stores its frozen tower's outputs in epoch 1 (OUT/feature_cache) and reads them after: "
                             "same losses, 2.4x faster (default: on)")
    parser.add_argument("--post", choices=["dpo", "grpo", "all"],
                        help="post-training demo instead: a weak SFT start (OUT/sft), then the method(s) into OUT/<method>; "
                             "OUT/metrics.json holds held-out accuracy before and after (docs/post_training.md)")


def run(args) -> int:
    from ..demo.run import format_metrics, run_demo

    if args.post:
        return run_post(args)

    kwargs = {} if args.epochs is None else {"epochs": args.epochs}
    kwargs["frame_cache"] = args.frame_cache
    kwargs["cpu_threads"] = args.cpu_threads
    kwargs["feature_cache"] = args.feature_cache
    metrics = run_demo(args.out, num_video_frames=args.num_video_frames, seed=args.seed, **kwargs)
    print(format_metrics(metrics))
    print(f"\nmodel: {args.out}/model   metrics: {args.out}/metrics.json   report: {args.out}/eval/report.html")
    return 0


def run_post(args) -> int:
    from ..demo.post import available_methods, run_post_demo

    methods = available_methods() if args.post == "all" else [args.post]
    metrics = run_post_demo(args.out, methods, num_video_frames=args.num_video_frames, seed=args.seed, cpu_threads=args.cpu_threads)
    for name, acc in metrics["test_accuracy"].items():
        print(f"{name:<5} test accuracy {acc:.3f}   validation {metrics['val_accuracy'][name]:.3f}")
    print(f"\nmodels: {', '.join(f'{args.out}/{m}' for m in metrics['test_accuracy'])}   metrics: {args.out}/metrics.json")
    return 0

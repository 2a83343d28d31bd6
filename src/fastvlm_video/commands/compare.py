"""fastvlm-video compare: two evaluations of the same data side by side — metric deltas (B - A), paired
tests that say whether they are real or within noise (exact McNemar for accuracy, bootstrap intervals
for scores), and the samples the two models answer differently (fixed / broke first). Prints a table;
--html writes a page.

examples:
  fastvlm-video compare runs/base/eval runs/ft/eval
  fastvlm-video compare runs/a/eval runs/b/eval --html a_vs_b.html --max_rows 50
"""


import argparse

NAME = "compare"
HELP = "metric deltas and disagreeing samples of two evaluate outputs"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("out_a", help="first evaluate --out folder (A, the baseline)")
    parser.add_argument("out_b", help="second evaluate --out folder (B)")
    parser.add_argument("--html", default="compare.html", help="HTML page to write ('' for none)")
    parser.add_argument("--max_rows", type=int, default=20, help="disagreeing samples printed")


def run(args) -> int:
    from ..infer.compare import compare

    print(compare(args.out_a, args.out_b, html=args.html or None, max_rows=args.max_rows))
    if args.html:
        print(f"\n{args.html}")
    return 0

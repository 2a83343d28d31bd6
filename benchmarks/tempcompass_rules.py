"""Do our TempCompass rules score exactly like TempCompass' own ``eval_*.py``?

Reads a checkout of llyx97/TempCompass (its ``questions/`` and the published ``auto_eval_results/<model>``
of a model's real ``predictions/<model>``) and, for every question, compares what ``infer/answer_rules.py``
reads with TempCompass' stored result: ``match_success`` (the rule read the answer) and ``rating``.
Also checks that all four ``questions/`` files load with ``evaluate``'s reader and no problem row.

    python benchmarks/tempcompass_rules.py PATH/TO/TempCompass [--model video-llava]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from fastvlm_video.infer import answer_rules as rules
from fastvlm_video.infer.benchmarks import load_benchmark


def rule_reads(task: str, prediction: str, question: str, answer: str) -> tuple[bool, int]:
    """(the rule read something, right) for one published prediction."""
    if task == "multi-choice":
        letter = rules.tempcompass_choice_letter(prediction, answer)
        return letter is not None, int(letter == answer[:1])
    if task == "yes_no":
        said = rules.tempcompass_yes_no(prediction)
        return said is not None, int(said == answer)
    index = rules.caption_matching_choice(prediction, question)
    lines = question.split("\n")[1:]
    return index is not None, int(index is not None and lines[index].split(": ")[0] == answer.split(": ")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo", type=Path, help="a checkout of llyx97/TempCompass")
    parser.add_argument("--model", default="video-llava", help="a folder of auto_eval_results/ (default video-llava)")
    args = parser.parse_args()
    samples, specs = load_benchmark(args.repo / "questions", args.repo / "videos")
    print(f"questions/: {len(samples)} questions, {dict(Counter(s.groups['type'] for s in specs.values()))}, "
          f"{sum(bool(s.extra.get('problem')) for s in specs.values())} with a problem")  # fmt: skip
    for task in ("multi-choice", "yes_no", "caption_matching"):
        results = json.loads((args.repo / "auto_eval_results" / args.model / f"{task}.json").read_text())
        same_match = same_rating = n = 0
        for dims in results.values():
            for rows in dims.values():
                for row in rows:
                    if row["video-llm-prediction"] is None:
                        continue
                    read, right = rule_reads(task, row["video-llm-prediction"], row["question"], row["gt-answer"])
                    n += 1
                    same_match += read == row["match_success"]
                    same_rating += (not read) or right == row["rating"]  # unread ones went to ChatGPT there
        print(f"{task}: {n} published {args.model} answers; rule read/unread as TempCompass: {same_match}; "
              f"same rating where read: {same_rating}")  # fmt: skip


if __name__ == "__main__":
    main()

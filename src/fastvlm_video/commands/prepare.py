"""fastvlm-video prepare: turn a folder per class, or a CSV/JSONL table, into train/val/test JSON.

SOURCE is either
  a folder per class   ROOT/<class>/*.mp4 (any depth, videos or images). The question and the
                       answer are templates over {class}, {stem} (file name) and {path}.
  a table              a CSV with a header, or JSON/JSONL objects. --columns maps the fields
                       media, question, answer, class, group, id, start, end to your columns
                       (a column with the field's own name is used unmapped). Templates may use
                       any column: --question "What is {person} doing?".

Splits (--split train,val[,test]) are leak-free and stable: all items of a group (by default one
video; --columns group=COLUMN for e.g. a subject) share one split, chosen by a hash of the group's
key and --seed. So preparing again after adding or removing clips, with the same --seed and --split,
keeps every earlier item in its split (sizes are proportional on average, not exactly). Every split
asked for gets at least one group when there are enough groups; else prepare fails and says why.
Labels that differ only by case or surrounding spaces ("Up", "up ") are one class. CSV times may be
seconds (12.5) or mm:ss / hh:mm:ss. Items with a missing media file, or that training would reject,
are dropped and listed. A non-empty --out is refused without --overwrite.
Writes OUT/train.json, val.json, test.json (LLaVA format, read unchanged by `train` with
--image_folder set to the media folder) and OUT/summary.json.

examples:
  fastvlm-video prepare exercises/ --out data --question "What exercise is shown?" --answer "{class}"
  fastvlm-video prepare labels.csv --media_folder videos --out data \\
      --columns media=clip,class=label,start=t0,end=t1 --question "What happens?" --answer "{label}"
  fastvlm-video prepare exercises/ --out data --overwrite   # after adding clips: old items keep their split
"""

import argparse

NAME = "prepare"
HELP = "build train/val/test JSON from a folder per class or a CSV/JSONL table"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("source", help="ROOT folder with one sub-folder per class, or a CSV / JSON / JSONL table")
    parser.add_argument("--out", required=True, help="output folder for train.json, val.json, test.json, summary.json")
    parser.add_argument("--question", help='question template (default: folders "What is shown in the video?", table "{question}")')
    parser.add_argument("--answer", help='answer template (default: folders "{class}", table "{answer}")')
    parser.add_argument("--columns", default="", metavar="FIELD=COLUMN,...",
                        help="table only: map fields (media, question, answer, class, group, id, start, end) to columns")
    parser.add_argument("--media_folder", help="table only: folder the media paths are relative to (default: the table's folder)")
    parser.add_argument("--split", default="0.8,0.1,0.1", help="fractions of train,val[,test] (default: 0.8,0.1,0.1)")
    parser.add_argument("--seed", type=int, default=42, help="the same seed gives the same splits (default: 42)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files in a non-empty --out")


def run(args) -> int:
    from ..data.prepare import format_summary, parse_columns, parse_fractions, prepare

    summary = prepare(
        args.source,
        args.out,
        question=args.question,
        answer=args.answer,
        columns=parse_columns(args.columns),
        media_folder=args.media_folder,
        fractions=parse_fractions(args.split),
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(format_summary(summary))
    print(f"wrote {args.out}/{{{','.join(summary['counts'])}}}.json; train with --image_folder {summary['media_folder']}")
    return 0

"""``fastvlm-video prepare``: training JSON from a folder per class or from a CSV/JSONL table.

Sources become ``Item``s (media path, question, answer, class, group); ``split_items`` deals the
groups (by default: one video = one group, so no video is in two splits) to train/val/test,
stratified by class, deterministically for a seed; ``write_splits`` writes LLaVA-format files that
``train`` reads unchanged (each record is validated with the training parser) and a summary.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, RecordError
from ..media.video import is_video_file
from .records import iter_records, parse_record
from .subset import write_records

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})  # animated ones are read as videos
SPLIT_NAMES = ("train", "val", "test")
FIELDS = ("media", "question", "answer", "class", "group", "id", "start", "end")
DEFAULT_QUESTION = "What is shown in the video?"
MEDIA_COLUMNS = ("media", "video", "image", "path", "file")  # tried in order when --columns names none


@dataclass(frozen=True)
class Item:
    """One future record, before it is given a split."""

    id: str
    media: str  # relative to the media folder
    question: str
    answer: str
    label: str | None = None  # class, for stratification
    group: str = ""  # items of one group share a split (default: the media path)
    start: float | None = None
    end: float | None = None

    def to_record(self) -> dict:
        """The LLaVA-format record ``train`` reads."""
        record = {
            "id": self.id,
            "video" if is_video_file(self.media) else "image": self.media,
            "conversations": [{"from": "human", "value": f"<image>\n{self.question}"}, {"from": "gpt", "value": self.answer}],
        }
        record.update({k: v for k, v in (("start", self.start), ("end", self.end), ("class", self.label)) if v is not None})
        return record


def is_media_file(path: Path) -> bool:
    return is_video_file(path) or path.suffix.lower() in IMAGE_EXTENSIONS


def prepare(
    source: str | Path,
    out_dir: str | Path,
    question: str | None = None,
    answer: str | None = None,
    columns: dict[str, str] | None = None,
    media_folder: str | Path | None = None,
    fractions: list[float] = (0.8, 0.1, 0.1),
    seed: int = 42,
) -> dict:
    """A class-folder tree (a directory) or a table (a file) -> split files + summary; returns the summary.

    Media paths are written relative to the media folder: the tree itself, or ``media_folder``
    (default: the table's directory) for a table. Pass that folder to ``train --image_folder``.
    """
    source = Path(source)
    if source.is_dir():
        media_folder = source
        items = from_class_folders(source, question or DEFAULT_QUESTION, answer or "{class}")
    else:
        media_folder = Path(media_folder) if media_folder else source.parent
        items = from_table(source, question or "{question}", answer or "{answer}", columns)
    repeated = [i for i, n in Counter(it.id for it in items).items() if n > 1]
    if repeated:
        raise ConfigError(f"{source}: {len(repeated)} id(s) used more than once, e.g. {repeated[:5]}; ids must be unique")
    items, dropped = drop_unusable(items, media_folder)
    if not items:
        raise ConfigError(f"{source}: no usable item (all {len(dropped)} dropped; see the log)")
    splits = split_items(items, list(fractions), seed)
    extra = {"source": str(source), "media_folder": str(media_folder), "seed": seed, "split": list(fractions), "dropped": dropped}
    return write_splits(splits, out_dir, extra)


def from_class_folders(root: str | Path, question: str, answer: str = "{class}") -> list[Item]:
    """``ROOT/<class>/**/<file>``: one item per video or image; templates may use {class}, {stem}, {path}."""
    root = Path(root)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ConfigError(f"{root}: no class folders (expected ROOT/<class>/<video files>)")
    items = []
    for folder in classes:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and is_media_file(p) and not p.name.startswith(".")):
            rel = path.relative_to(root).as_posix()
            fields = {"class": folder.name, "stem": path.stem, "path": rel}
            where = rel
            items.append(Item(
                id=str(Path(rel).with_suffix("")), media=rel, label=folder.name, group=rel,
                question=fill(question, fields, where), answer=fill(answer, fields, where),
            ))  # fmt: skip
    if not items:
        raise ConfigError(f"{root}: the class folders hold no video or image files")
    return items


def from_table(path: str | Path, question: str = "{question}", answer: str = "{answer}", columns: dict[str, str] | None = None) -> list[Item]:
    """One item per CSV row or JSON/JSONL object.

    ``columns`` maps our field names (media, question, answer, class, group, id, start, end) to the
    table's; unmapped fields use a column of the same name when there is one. The templates may use
    any column, by its own name or by our field name.
    """
    rows = read_table(path)
    if not rows:
        raise ConfigError(f"{path}: the table has no rows")
    mapping = column_mapping(rows[0].keys(), columns or {}, path)
    items = []
    for i, row in enumerate(rows):
        where = f"{path}, row {i}"
        fields = {**row, **{name: row.get(col) for name, col in mapping.items()}}
        media = str(fields.get("media") or "").strip()
        if not media:
            raise ConfigError(f"{where}: no media path in column {mapping['media']!r}")
        items.append(Item(
            id=_text(fields.get("id")) or f"{Path(path).stem}-{i}",
            media=media,
            question=fill(question, fields, where),
            answer=fill(answer, fields, where),
            label=_text(fields.get("class")),
            group=_text(fields.get("group")) or media,
            start=_seconds(fields.get("start"), "start", where),
            end=_seconds(fields.get("end"), "end", where),
        ))  # fmt: skip
    return items


def read_table(path: str | Path) -> list[dict]:
    """Rows of a CSV (header line first) or a JSON list / JSONL of objects."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".jsonl"):
        rows = []
        for i, row in iter_records(path):
            if isinstance(row, RecordError):
                raise row
            if not isinstance(row, dict):
                raise RecordError(str(path), i, f"a row must be a JSON object, got {type(row).__name__}")
            rows.append(row)
        return rows
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise ConfigError(f"{path}: table not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start})") from None


def column_mapping(available, columns: dict[str, str], source) -> dict[str, str]:
    """Our field name -> the table's column, from ``columns`` and same-name defaults."""
    available = list(available)
    unknown = set(columns) - set(FIELDS)
    if unknown:
        raise ConfigError(f"--columns: unknown field(s) {sorted(unknown)}; the fields are {list(FIELDS)}")
    missing = {name: col for name, col in columns.items() if col not in available}
    if missing:
        raise ConfigError(f"{source}: no column(s) {sorted(missing.values())}; the columns are {available}")
    mapping = {name: name for name in FIELDS if name in available} | dict(columns)
    if "media" not in mapping:
        found = next((c for c in MEDIA_COLUMNS if c in available), None)
        if found is None:
            raise ConfigError(f"{source}: which column holds the media path? Pass --columns media=COLUMN (columns: {available})")
        mapping["media"] = found
    return mapping


def fill(template: str, fields: dict, where: str) -> str:
    """``template.format(**fields)`` with an error naming the row and the fields there are."""
    try:
        return template.format_map({k: "" if v is None else v for k, v in fields.items()})
    except KeyError as exc:
        raise ConfigError(f"{where}: the template {template!r} uses {{{exc.args[0]}}}, but the fields are {sorted(fields)}") from None
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"template {template!r}: {exc}") from None


def _text(value) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _seconds(value, name: str, where: str) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{where}: {name} must be a number of seconds, got {value!r}") from None


def parse_columns(text: str) -> dict[str, str]:
    """``"media=clip,class=label"`` -> ``{"media": "clip", "class": "label"}``."""
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, column = part.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise ConfigError(f"--columns {text!r}: expected FIELD=COLUMN pairs separated by commas")
        mapping[name.strip()] = column.strip()
    return mapping


def parse_fractions(text: str) -> list[float]:
    """``"0.8,0.1,0.1"`` -> fractions of train, val (and test); they must sum to 1."""
    try:
        fractions = [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--split {text!r}: expected numbers like 0.8,0.1,0.1") from None
    if not 1 <= len(fractions) <= 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ConfigError(f"--split {text!r}: one to three non-negative fractions (train,val,test) summing to 1")
    return fractions


def split_items(items: list[Item], fractions: list[float], seed: int) -> dict[str, list[Item]]:
    """Deal whole groups to splits so each class, and the whole, is split in proportion.

    A group's class is its items' most common class. Classes are taken in sorted order, each
    shuffled by its own seeded generator; every group goes to the split furthest behind its share
    within the class, ties going to the split furthest behind overall. So the result depends only
    on the seed and the items (not their order), and many small classes still fill val and test.
    """
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.group or item.media].append(item)
    strata: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        labels = Counter(m.label or "" for m in members)
        strata[min(labels, key=lambda lab: (-labels[lab], lab))].append(key)
    names = SPLIT_NAMES[: len(fractions)]
    out: dict[str, list[Item]] = {name: [] for name in names}
    overall = [0] * len(names)
    for label in sorted(strata):
        keys = sorted(strata[label])
        random.Random(f"{seed}/{label}").shuffle(keys)
        within = [0] * len(names)
        for key in keys:
            size = len(groups[key])
            j = max(range(len(names)), key=lambda j: (_behind(fractions, within, j, size), _behind(fractions, overall, j, size), -j))
            out[names[j]] += groups[key]
            within[j] += size
            overall[j] += size
    return {name: sorted(split, key=lambda it: (it.label or "", it.id)) for name, split in out.items()}


def _behind(fractions: list[float], counts: list[int], j: int, size: int) -> float:
    """How far split ``j`` would stay short of its share if the next ``size`` items went elsewhere."""
    return round(fractions[j] * (sum(counts) + size) - counts[j], 9)


def drop_unusable(items: list[Item], media_folder: str | Path) -> tuple[list[Item], list[dict]]:
    """Items whose media file is missing, or whose record training would reject, are dropped (and listed)."""
    kept, dropped = [], []
    for item in items:
        reason = None
        if not (Path(media_folder) / item.media).is_file():
            reason = f"media file not found: {Path(media_folder) / item.media}"
        else:
            try:
                parse_record(item.to_record(), "prepare", 0, media_folder)
            except RecordError as exc:
                reason = exc.reason
        if reason is None:
            kept.append(item)
        else:
            logger.warning("dropped %s: %s", item.id, reason)
            dropped.append({"id": item.id, "media": item.media, "reason": reason})
    return kept, dropped


def write_splits(splits: dict[str, list[Item]], out_dir: str | Path, summary_extra: dict | None = None) -> dict:
    """``out_dir/{train,val,test}.json`` and ``summary.json``; returns the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        write_records([item.to_record() for item in split], out_dir / f"{name}.json")
    summary = {
        **(summary_extra or {}),
        "counts": {name: len(split) for name, split in splits.items()},
        "classes": {
            label: {name: sum(it.label == label for it in split) for name, split in splits.items()}
            for label in sorted({it.label for split in splits.values() for it in split if it.label is not None})
        },
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def format_summary(summary: dict) -> str:
    """Counts per split and class as a text table."""
    names = list(summary["counts"])
    lines = [f"{'class':<24}" + "".join(f"{n:>8}" for n in names)]
    for label, counts in summary["classes"].items():
        lines.append(f"{label[:24]:<24}" + "".join(f"{counts[n]:>8}" for n in names))
    lines.append(f"{'total':<24}" + "".join(f"{summary['counts'][n]:>8}" for n in names))
    if summary.get("dropped"):
        lines.append(f"dropped {len(summary['dropped'])} item(s) (reasons in summary.json)")
    return "\n".join(lines)

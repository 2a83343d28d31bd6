"""``fastvlm-video prepare``: training JSON from a folder per class or from a CSV/JSONL table.

Sources become ``Item``s (media path, question, answer, class, group); ``split_items`` deals the
groups (by default: one video = one group, so no video is in two splits) to train/val/test by a
stable hash of each group's key and the seed, so a dataset that grows keeps its old items' splits;
``write_splits`` writes LLaVA-format files that ``train`` reads unchanged (each record is validated
with the training parser) and a summary.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
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
MAX_LISTED = 50  # bad cells listed in one error


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
    overwrite: bool = False,
) -> dict:
    """A class-folder tree (a directory) or a table (a file) -> split files + summary; returns the summary.

    Media paths are written relative to the media folder: the tree itself, or ``media_folder``
    (default: the table's directory) for a table. Pass that folder to ``train --image_folder``.
    A non-empty ``out_dir`` is refused unless ``overwrite``; when it held splits, the summary counts
    the items that kept, changed or gained a split (``moved``).
    """
    source, out_dir = Path(source), Path(out_dir)
    check_out_dir(out_dir, overwrite)
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
    before = read_old_splits(out_dir)
    extra = {"source": str(source), "media_folder": str(media_folder), "seed": seed, "split": list(fractions), "dropped": dropped}
    if before:
        extra["moved"] = compare_splits(before, splits)
    for name in (*SPLIT_NAMES, "summary"):
        (out_dir / f"{name}.json").unlink(missing_ok=True)  # no stale test.json beside a two-way split
    return write_splits(splits, out_dir, extra)


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse to write over an earlier ``prepare`` (or anything else) without ``--overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a folder: choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(
            f"--out {out_dir} already holds files (splits a model was trained on?): pass --overwrite to replace "
            "them (the same --seed and --split keep every earlier item in its split), or choose another --out"
        )


def read_old_splits(out_dir: Path) -> dict[str, str]:
    """Item id -> split of the split files already in ``out_dir`` (empty when there are none)."""
    old: dict[str, str] = {}
    for name in SPLIT_NAMES:
        path = out_dir / f"{name}.json"
        try:
            records = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
        except (OSError, ValueError):
            continue
        old.update((str(r.get("id")), name) for r in records if isinstance(r, dict))
    return old


def compare_splits(before: dict[str, str], splits: dict[str, list[Item]]) -> dict:
    """How the new splits relate to the old: items kept in their split, moved (named), new and gone."""
    now = {it.id: name for name, split in splits.items() for it in split}
    moved = sorted(i for i in now.keys() & before.keys() if now[i] != before[i])
    if moved:
        shown = ", ".join(f"{i} ({before[i]} -> {now[i]})" for i in moved[:10])
        logger.warning("%d earlier item(s) changed split (another --seed or --split, or a stand-in returned): %s%s",
                       len(moved), shown, ", ..." if len(moved) > 10 else "")  # fmt: skip
    return {
        "kept": len(now.keys() & before.keys()) - len(moved),
        "moved": [{"id": i, "from": before[i], "to": now[i]} for i in moved],
        "new": len(now.keys() - before.keys()),
        "gone": len(before.keys() - now.keys()),
    }


def from_class_folders(root: str | Path, question: str, answer: str = "{class}") -> list[Item]:
    """``ROOT/<class>/**/<file>``: one item per video or image; templates may use {class}, {stem}, {path}."""
    root = Path(root)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ConfigError(f"{root}: no class folders (expected ROOT/<class>/<video files>)")
    items = []
    names = canonical_labels([folder.name for folder in classes])
    for folder in classes:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and is_media_file(p) and not p.name.startswith(".")):
            rel = path.relative_to(root).as_posix()
            fields = {"class": names[folder.name], "stem": path.stem, "path": rel}
            where = rel
            items.append(Item(
                id=str(Path(rel).with_suffix("")), media=rel, label=names[folder.name], group=rel,
                question=fill(question, fields, where), answer=fill(answer, fields, where),
            ))  # fmt: skip
    if not items:
        raise ConfigError(f"{root}: the class folders hold no video or image files")
    return items


def from_table(path: str | Path, question: str = "{question}", answer: str = "{answer}", columns: dict[str, str] | None = None) -> list[Item]:
    """One item per CSV row or JSON/JSONL object.

    ``columns`` maps our field names (media, question, answer, class, group, id, start, end) to the
    table's; unmapped fields use a column of the same name when there is one. The templates may use
    any column, by its own name or by our field name. Class labels that differ only by case or
    surrounding spaces are one class (``canonical_labels``). Every bad cell is reported at once, each
    with the line of the file it is on.
    """
    rows = read_table_rows(path)
    if not rows:
        raise ConfigError(f"{path}: the table has no rows")
    mapping = column_mapping(rows[0][1].keys(), columns or {}, path)
    raw = [str(row.get(mapping["class"])) for _, row in rows if "class" in mapping and _text(row.get(mapping["class"]))]
    labels = canonical_labels(raw)
    items, problems = [], []
    for i, (where, row) in enumerate(rows):
        fields = {**row, **{name: row.get(col) for name, col in mapping.items()}}
        if _text(fields.get("class")) is not None:
            fields["class"] = fields[mapping["class"]] = labels[str(fields["class"])]
        media = str(fields.get("media") or "").strip()
        bad = [] if media else [f"no media path in column {mapping['media']!r}"]
        times = {}
        for name in ("start", "end"):
            try:
                times[name] = parse_seconds(fields.get(name))
            except ValueError:
                bad.append(f"{name} must be seconds (12.5) or a time (1:32, 1:02:03.5), got {fields.get(name)!r}")
        if bad:
            problems += [f"{where}: {reason}" for reason in bad]
            continue
        items.append(Item(
            id=_text(fields.get("id")) or f"{Path(path).stem}-{i}",
            media=media,
            question=fill(question, fields, where).strip(),
            answer=fill(answer, fields, where).strip(),
            label=_text(fields.get("class")),
            group=_text(fields.get("group")) or media,
            start=times["start"],
            end=times["end"],
        ))  # fmt: skip
    if problems:
        shown = "\n  ".join(problems[:MAX_LISTED]) + (f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else "")
        raise ConfigError(f"{path}: {len(problems)} bad cell(s), fix them and run prepare again:\n  {shown}")
    return items


def canonical_labels(labels) -> dict[str, str]:
    """Each label -> its class's one spelling: labels equal up to case and surrounding spaces ("Up",
    "up", "UP ") are one class, spelt as most of its items spell it (ties: the first in sorted order).
    One log line names the merged spellings."""
    counts = Counter(labels)
    spellings: dict[str, Counter] = defaultdict(Counter)
    for label, n in counts.items():
        spellings[label.strip().casefold()][label.strip()] += n
    canonical = {key: min(c, key=lambda spelt: (-c[spelt], spelt)) for key, c in spellings.items()}
    merged = [(sorted({repr(lab) for lab in counts if lab.strip().casefold() == key}), name) for key, name in canonical.items()]
    merged = sorted(((v, n) for v, n in merged if v != [repr(n)]), key=lambda m: m[1].casefold())
    if merged:
        logger.warning("labels that differ only by case or surrounding spaces are one class: %s",
                       "; ".join(f"{', '.join(v)} -> {n!r}" for v, n in merged))  # fmt: skip
    return {label: canonical[label.strip().casefold()] for label in counts}


def read_table(path: str | Path) -> list[dict]:
    """Rows of a CSV (header line first) or a JSON list / JSONL of objects."""
    return [row for _, row in read_table_rows(path)]


def read_table_rows(path: str | Path) -> list[tuple[str, dict]]:
    """(where, row) for each row of a CSV (where: its line in the file) or JSON list / JSONL (its record)."""
    path = Path(path)
    if path.suffix.lower() in (".json", ".jsonl"):
        rows = []
        for i, row in iter_records(path):
            if isinstance(row, RecordError):
                raise row
            if not isinstance(row, dict):
                raise RecordError(str(path), i, f"a row must be a JSON object, got {type(row).__name__}")
            rows.append((f"{path}, record {i}", row))
        return rows
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            return [(f"{path}, line {reader.line_num}", row) for row in reader]
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


def parse_seconds(value) -> float | None:
    """A time cell: blank -> None; ``12.5`` seconds, or ``mm:ss`` / ``hh:mm:ss`` (fractions allowed). ``ValueError`` otherwise."""
    text = _text(value)
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) > 3 or (len(parts) > 1 and not all(p.strip() for p in parts)):
        raise ValueError(text)
    numbers = [float(p) for p in parts]
    if any(n < 0 for n in numbers) or any(n >= 60 for n in numbers[1:-1]) or (len(numbers) > 1 and numbers[-1] >= 60):
        raise ValueError(text)
    seconds = 0.0
    for n in numbers:
        seconds = seconds * 60 + n
    return seconds


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


def group_hash(key: str, seed: int) -> float:
    """A group's place in [0, 1): a hash of its key and the seed, the same on every machine and version."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_items(items: list[Item], fractions: list[float], seed: int) -> dict[str, list[Item]]:
    """Deal whole groups to splits by a stable hash, so adding or removing data moves no existing item.

    Each group (its items share a split; by default one media file) gets ``group_hash(key, seed)`` in
    [0, 1) and goes to the split whose share of [0, 1) holds it (train first, then val, then test).
    Whether a group is in test depends only on its key, the seed and the fractions, never on the other
    items: preparing again after adding clips keeps every old item where it was. The price: the split
    sizes are proportional only on average (binomial), per class as overall.

    A split with a non-zero fraction that no group hashes into takes the group whose hash lies nearest
    its share (from a split that keeps at least one group), so every such split is filled when there
    are at least as many groups as splits; otherwise ``ConfigError``. Such a stand-in returns to its
    hashed split once that split is filled by a group of its own (logged: this is the one case in which
    an item changes split when data are added).
    """
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.group or item.media].append(item)
    names = SPLIT_NAMES[: len(fractions)]
    bounds = [sum(fractions[: j + 1]) for j in range(len(names))]
    place = {key: group_hash(key, seed) for key in groups}
    chosen = {key: next((j for j, b in enumerate(bounds) if u < b), len(names) - 1) for key, u in place.items()}
    wanted = [j for j, f in enumerate(fractions) if f > 0]
    if len(groups) < len(wanted):
        what = "items" if all(len(m) == 1 for m in groups.values()) else "groups (items of a group share a split)"
        raise ConfigError(
            f"{len(groups)} {what} cannot fill {len(wanted)} splits ({','.join(names[j] for j in wanted)}): "
            f"add data, or ask for fewer splits (e.g. --split 0.8,0.2 for no test split)"
        )
    for j in wanted:
        if any(c == j for c in chosen.values()):
            continue
        low, high = (bounds[j - 1] if j else 0.0), bounds[j]
        sizes = Counter(chosen.values())
        donors = [k for k in groups if sizes[chosen[k]] > 1 and chosen[k] in wanted]
        key = min(donors, key=lambda k: (min(abs(place[k] - low), abs(place[k] - high)), k))
        logger.info("the %s split got no group by hash: %s stands in (it returns to %s when %s gets a group of its own)",
                    names[j], key, names[chosen[key]], names[j])  # fmt: skip
        chosen[key] = j
    out: dict[str, list[Item]] = {name: [] for name in names}
    for key, members in groups.items():
        out[names[chosen[key]]] += members
    return {name: sorted(split, key=lambda it: (it.label or "", it.id)) for name, split in out.items()}


def drop_unusable(items: list[Item], media_folder: str | Path) -> tuple[list[Item], list[dict]]:
    """Items whose media file is missing, or whose record training would reject, are dropped (and listed)."""
    kept, dropped = [], []
    for item in items:
        reason = None
        if not (Path(media_folder) / item.media).is_file():
            reason = f"media file not found: {Path(media_folder) / item.media}"
            if "\\" in item.media:
                posix = item.media.replace("\\", "/")
                found = " (that file exists)" if (Path(media_folder) / posix).is_file() else ""
                reason += f"; the path uses backslashes (a Windows path?): write it as {posix}{found}"
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
    if (moved := summary.get("moved")) is not None:
        lines.append(f"against the splits replaced: {moved['kept']} item(s) kept their split, {len(moved['moved'])} changed split, "
                     f"{moved['new']} new, {moved['gone']} gone")  # fmt: skip
    return "\n".join(lines)

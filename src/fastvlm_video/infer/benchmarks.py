"""Multiple-choice video benchmarks in their published local formats, read into ``Sample`` + ``ChoiceSpec``.

Download a benchmark once (annotations + videos); ``evaluate --data FILE_OR_DIR --format NAME`` reads it
from disk (never from the network). Field names follow the published files, as consumed by lmms-eval's
task definitions (``lmms_eval/tasks/{mvbench,videomme,tempcompass}``):

- ``mvbench``: one JSON list per task (``json/<task>.json`` in OpenGVLab/MVBench; the task is the file
  name), records ``{"video", "question", "candidates": [...], "answer": <candidate text>}``, some with
  ``start``/``end`` seconds. ``--media_folder`` is MVBench's ``video/`` folder: a video is looked up there,
  then in its task's source folder (``star/Charades_v1_480``, ``clevrer/video_validation``, ...: the
  official data list; lmms-eval's pre-cut ``*_segment`` folders too, where start/end are not re-applied). Prompt (lmms-eval): ``Question:{q}\\nOption:\\n(A) ..\\n(B) ..\\n``
  ``Answer with the option's letter from the given choices directly.``
- ``videomme``: a JSON/JSONL/Parquet table (lmms-lab/Video-MME ``videomme/test-*.parquet``), records
  ``{"videoID", "question_id", "duration", "domain", "sub_category", "task_type", "question",``
  ``"options": ["A. ..", ...], "answer": "C"}``; video ``<videoID>.mp4``. Prompt (Video-MME, no subtitles):
  ``Select the best answer to the following multiple-choice question based on the video. Respond with``
  ``only the letter (A, B, C, or D) of the correct option.\\n{q}\\n{options}\\nThe best answer is:``.
- ``tempcompass``: the multi-choice table (lmms-lab/TempCompass ``multi-choice``), records
  ``{"video_id", "question": "q\\nA. ..\\nB. ..", "answer": "B. ..", "dim"}``, or the original repository's
  ``questions/multi-choice.json`` (``{video_id: {dim: [{"question", "answer"}]}}``); video
  ``<video_id>.mp4``. Prompt (TempCompass): ``{question}\\nPlease directly give the best option:``.

Each record becomes a one-turn ``Sample`` (the video, the prompt, the answer letter as reference) and a
``ChoiceSpec`` (the option texts, the right index, groups such as ``task`` and ``category``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from ..constants import IMAGE_TOKEN
from ..data.records import MediaRef, Message, Sample, iter_records
from ..errors import RecordError
from .choices import LETTERS, ChoiceSpec, format_options

FORMATS = ("mvbench", "videomme", "tempcompass")
VIDEO_EXTENSIONS = (".mp4", ".MP4", ".mkv", ".webm", ".avi", ".mov")

MVBENCH_POST = "Answer with the option's letter from the given choices directly."
VIDEOMME_PRE = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)
VIDEOMME_POST = "The best answer is:"
TEMPCOMPASS_POST = "\nPlease directly give the best option:"

_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[.)]\s*(.*)$")

# MVBench keeps each task's videos in a source folder under video/: the official layout (its data list),
# then lmms-eval's (pre-cut segments: their start/end are already applied, so they are dropped).
MVBENCH_FOLDERS = {
    "action_sequence": ("star/Charades_v1_480", "star/Charades_segment"),
    "action_prediction": ("star/Charades_v1_480", "star/Charades_segment"),
    "object_interaction": ("star/Charades_v1_480", "star/Charades_segment"),
    "action_localization": ("sta/sta_video", "sta/sta_video_segment"),
    "action_antonym": ("ssv2_video", "ssv2_video_mp4"),
    "fine_grained_action": ("Moments_in_Time_Raw/videos",),
    "unexpected_action": ("FunQA_test/test",),
    "object_existence": ("clevrer/video_validation",),
    "moving_direction": ("clevrer/video_validation",),
    "moving_count": ("clevrer/video_validation",),
    "moving_attribute": ("clevrer/video_validation",),
    "counterfactual_inference": ("clevrer/video_validation",),
    "object_shuffle": ("perception/videos",),
    "action_count": ("perception/videos",),
    "state_change": ("perception/videos",),
    "character_order": ("perception/videos",),
    "scene_transition": ("scene_qa/video",),
    "fine_grained_pose": ("nturgbd", "nturgbd_convert"),
    "egocentric_navigation": ("vlnqa",),
    "episodic_reasoning": ("tvqa/frames_fps3_hq", "tvqa/video_fps3_hq_segment"),
}


def detect_format(record: dict) -> str | None:
    """The benchmark a record looks like (by its published field names), or None (our own format)."""
    if "candidates" in record and "question" in record:
        return "mvbench"
    if "options" in record and ("videoID" in record or "task_type" in record):
        return "videomme"
    if "dim" in record and "video_id" in record:
        return "tempcompass"
    return None


def load_benchmark(path: str | Path, media_folder: str | Path, fmt: str = "auto") -> tuple[list[Sample], dict[str, ChoiceSpec]]:
    """Every record of a benchmark file or folder (MVBench: a folder of per-task JSON files)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl", ".parquet")) if path.is_dir() else [path]
    if not files:
        raise RecordError(str(path), None, "no .json/.jsonl/.parquet benchmark files in this folder")
    samples, specs = [], {}
    for file in files:
        for index, record in _records(file):
            kind = detect_format(record) if fmt == "auto" else fmt
            if kind not in READERS:
                raise RecordError(str(file), index, f"not a {'/'.join(FORMATS)} record (keys {sorted(record)[:8]}); pass --format")
            sample, spec = READERS[kind](record, file, index, Path(media_folder))
            if sample.id in specs:
                raise RecordError(str(file), index, f"repeated id {sample.id!r}", sample.id)
            samples.append(sample)
            specs[sample.id] = spec
    return samples, specs


def _records(file: Path) -> Iterator[tuple[int, dict]]:
    if file.suffix == ".parquet":
        yield from enumerate(_parquet_rows(file))
        return
    text = file.read_text(encoding="utf-8")
    if text.lstrip().startswith("{") and not file.suffix == ".jsonl":  # TempCompass' original nested layout
        yield from enumerate(_flatten_tempcompass(json.loads(text), file))
        return
    for index, record in iter_records(file):
        if isinstance(record, RecordError):
            raise record
        if not isinstance(record, dict):
            raise RecordError(str(file), index, f"a record must be a JSON object, got {type(record).__name__}")
        yield index, record


def _parquet_rows(file: Path) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise RecordError(str(file), None, "reading Parquet needs pyarrow: pip install pyarrow (or convert to JSONL)") from None
    return [{k: (list(v) if hasattr(v, "tolist") else v) for k, v in row.items()} for row in pq.read_table(file).to_pylist()]


def _flatten_tempcompass(data: dict, file: Path) -> list[dict]:
    rows = []
    for video_id, dims in data.items():
        if not isinstance(dims, dict):
            raise RecordError(str(file), None, f"video {video_id!r}: expected {{dim: [questions]}}")
        for dim, questions in dims.items():
            for q in questions:
                rows.append({"video_id": video_id, "dim": dim, "question": q["question"], "answer": q["answer"]})
    return rows


def _confined(media_folder: Path, rel: str, file: Path, index: int) -> Path:
    """``media_folder / rel``, refusing a path that leads outside the folder."""
    path = media_folder / rel
    root = os.path.realpath(media_folder)
    if os.path.commonpath([root, os.path.realpath(path)]) != root:
        raise RecordError(str(file), index, f"video {rel!r} is outside the media folder {str(media_folder)!r}")
    return path


def _find_video(media_folder: Path, stem: str, file: Path, index: int) -> str:
    """``stem`` as given when it has an extension, else the first existing ``stem.<ext>``."""
    if Path(stem).suffix:
        return str(_confined(media_folder, stem, file, index))
    for ext in VIDEO_EXTENSIONS:
        if _confined(media_folder, f"{stem}{ext}", file, index).is_file():
            return str(media_folder / f"{stem}{ext}")
    return str(media_folder / f"{stem}.mp4")  # missing: reported as a media error of this sample


def _mvbench_video(media_folder: Path, task: str, video: str, file: Path, index: int) -> tuple[str, bool]:
    """Where an MVBench video is (directly, or in its task's source folder) and whether start/end apply."""
    for n, folder in enumerate(("", *MVBENCH_FOLDERS.get(task, ()))):
        path = _confined(media_folder, f"{folder}/{video}" if folder else video, file, index)
        if path.exists():
            return str(path), n < 2  # the second folder of a pair holds pre-cut segments
    return str(media_folder / video), True  # missing: reported as a media error of this sample


def _need(record: dict, keys: tuple[str, ...], file: Path, index: int) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise RecordError(str(file), index, f"missing field(s) {missing}")


def _sample(record_id: str, video: str, prompt: str, answer: str, file: Path, index: int, record: dict, bounds: bool = True) -> Sample:
    start, end = (record.get("start"), record.get("end")) if bounds else (None, None)
    ref = MediaRef(video, "video", None if start is None else float(start), None if end is None else float(end))
    messages = [Message("user", f"{IMAGE_TOKEN}\n{prompt}"), Message("assistant", answer)]
    return Sample(record_id, messages, [ref], str(file), index)


def read_mvbench(record: dict, file: Path, index: int, media_folder: Path) -> tuple[Sample, ChoiceSpec]:
    _need(record, ("video", "question", "candidates", "answer"), file, index)
    options = [str(c) for c in record["candidates"]]
    if record["answer"] not in options:
        raise RecordError(str(file), index, f"answer {record['answer']!r} is not one of the candidates {options}")
    answer = options.index(record["answer"])
    task = str(record.get("task", file.stem))
    prompt = f"Question:{record['question']}\nOption:\n{format_options(options, '({letter}) {text}')}\n{MVBENCH_POST}"
    video, bounds = _mvbench_video(media_folder, task, str(record["video"]), file, index)
    sample = _sample(f"{task}/{record.get('id', index)}", video, prompt, LETTERS[answer], file, index, record, bounds)
    return sample, ChoiceSpec(options, answer, groups={"task": task})


def read_videomme(record: dict, file: Path, index: int, media_folder: Path) -> tuple[Sample, ChoiceSpec]:
    _need(record, ("question", "options", "answer"), file, index)
    options = [_OPTION_LINE.match(o).group(2) if _OPTION_LINE.match(o) else o for o in map(str, record["options"])]
    letter = str(record["answer"]).strip()[:1].upper()
    if letter not in LETTERS[: len(options)]:
        raise RecordError(str(file), index, f"answer {record['answer']!r} is not a letter of the {len(options)} options")
    video_id = record.get("videoID") or record.get("video_id")
    if not video_id:
        raise RecordError(str(file), index, "missing field 'videoID'")
    prompt = f"{VIDEOMME_PRE}\n{record['question']}\n{format_options(options)}\n{VIDEOMME_POST}"
    groups = {"task": str(record.get("task_type", "all")), "category": str(record.get("domain", "all"))}
    if "duration" in record:
        groups["duration"] = str(record["duration"])
    record_id = str(record.get("question_id", index))
    return _sample(record_id, _find_video(media_folder, video_id, file, index), prompt, letter, file, index, record), ChoiceSpec(
        options, LETTERS.index(letter), groups=groups
    )


def read_tempcompass(record: dict, file: Path, index: int, media_folder: Path) -> tuple[Sample, ChoiceSpec]:
    _need(record, ("video_id", "question", "answer", "dim"), file, index)
    lines = str(record["question"]).split("\n")
    options = [m.group(2) for m in map(_OPTION_LINE.match, lines) if m]
    letter = str(record["answer"]).strip()[:1].upper()
    if not options or letter not in LETTERS[: len(options)]:
        raise RecordError(str(file), index, f"cannot read the lettered options / answer {record['answer']!r} of this question")
    prompt = f"{record['question']}{TEMPCOMPASS_POST}"
    record_id = str(record.get("id", f"{record['video_id']}/{record['dim']}/{index}"))
    video = _find_video(media_folder, str(record["video_id"]), file, index)
    return _sample(record_id, video, prompt, letter, file, index, record), ChoiceSpec(options, LETTERS.index(letter), groups={"task": str(record["dim"])})


READERS: dict[str, Callable] = {"mvbench": read_mvbench, "videomme": read_videomme, "tempcompass": read_tempcompass}


def is_benchmark(path: str | Path) -> bool:
    """Does ``path`` (a file, or a folder of per-task files) hold benchmark records rather than our own?"""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl", ".parquet")) if path.is_dir() else [path]
    try:
        first = next(_records(files[0]), None) if files else None
    except (RecordError, ValueError, OSError):
        return False  # let the regular loader report it
    return first is not None and detect_format(first[1]) is not None


def class_specs(samples: list[Sample]) -> dict[str, ChoiceSpec]:
    """Our own records that carry a ``class`` (as ``prepare`` writes it): a closed label set.

    Each class is answered by its most common reference text; those texts are the candidates of every
    record that has a class. Records without one get no spec (they are scored as free text).
    """
    raw: dict[tuple[str, int], dict] = {}
    for source in sorted({s.source for s in samples}):
        for index, record in iter_records(source):
            if isinstance(record, dict):
                raw[(source, index)] = record
    classes = {s.id: raw.get((s.source, s.index), {}).get("class") for s in samples}
    if not any(c is not None for c in classes.values()):
        return {}
    answers: dict[str, dict[str, int]] = {}
    for s in samples:
        if classes[s.id] is not None:
            counts = answers.setdefault(str(classes[s.id]), {})
            reference = s.messages[-1].content if s.messages[-1].role == "assistant" else ""
            counts[reference] = counts.get(reference, 0) + 1
    answer_of = {c: max(counts, key=counts.get) for c, counts in answers.items()}
    labels = sorted(set(answer_of.values()))
    return {
        s.id: ChoiceSpec(labels, labels.index(answer_of[str(classes[s.id])]), lettered=False, groups={"class": str(classes[s.id])})
        for s in samples
        if classes[s.id] is not None
    }

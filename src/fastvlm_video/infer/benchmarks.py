"""Multiple-choice video benchmarks in their published local formats, read into ``Sample`` + ``ChoiceSpec``.

Download a benchmark once (annotations + videos); ``evaluate --data FILE_OR_DIR --format NAME`` reads it
from disk (never from the network). Field names follow the published files, as consumed by lmms-eval's
task definitions (``lmms_eval/tasks/{mvbench,videomme,tempcompass}``):

- ``mvbench``: one JSON list per task (``json/<task>.json`` in OpenGVLab/MVBench; the task is the file
  name), records ``{"video", "question", "candidates": [...], "answer": <candidate text>}``, some with
  ``start``/``end`` seconds (applied for MVBench's five bounded tasks only). ``--media_folder`` is MVBench's
  ``video/`` folder: a video (or episodic_reasoning's folder of frames) is looked up there, then in its task's
  source folder (``star/Charades_v1_480``, ``clevrer/video_validation``, ...: the official data list), then in
  ``data0613/<folder>``, then in lmms-eval's pre-cut ``*_segment`` folders (start/end not re-applied).
- ``videomme``: a JSON/JSONL/Parquet table (lmms-lab/Video-MME ``videomme/test-*.parquet``), records
  ``{"videoID", "question_id", "duration", "domain", "sub_category", "task_type", "question",``
  ``"options": ["A. ..", ...], "answer": "C"}``; video ``<videoID>.mp4``; subtitles ``<videoID>.srt``.
- ``tempcompass``: the four task types (multi-choice, yes_no, caption_matching, captioning) as the HF tables
  (``{"video_id", "question", "answer", "dim"}``) or the original repository's ``questions/<type>.json``
  (``{video_id: {dim: [{"question", "answer"}]}}``); video ``<video_id>.mp4``.

Prompts: ``prompt_style="lmms-eval"`` (lmms-eval's current wording, the default) or ``"official"`` (the
benchmark's own evaluation); the exact strings are the constants below and the table in docs/evaluation.md.
Each record becomes a one-turn ``Sample`` (the video, the prompt, the answer as reference) and a
``ChoiceSpec`` (the option texts, the right index or None when the record's answer is not an option: scored
wrong, never a stop, groups such as ``task`` and ``category``, the rules' ``kind``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..constants import IMAGE_TOKEN
from ..data.records import MediaRef, Message, Sample, iter_records
from ..data.subtitles import slot as subtitle_slot
from ..errors import ConfigError, RecordError
from .choices import LETTERS, ChoiceSpec, format_options
from .metrics import normalize_answer

logger = logging.getLogger(__name__)

FORMATS = ("mvbench", "videomme", "tempcompass")
PROMPT_STYLES = ("lmms-eval", "official")
VIDEO_EXTENSIONS = (".mp4", ".MP4", ".mkv", ".webm", ".avi", ".mov")

# The exact prompt strings (docs/evaluation.md has the same table; tests pin every one).
MVBENCH_POST = "Only give the best option."  # lmms-eval since 2024-10 and MVBench's own evaluation
MVBENCH_SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of "
    "objects, and the action and pose of persons. Based on your observations, select the best option that "
    "accurately addresses the question."
)
MVBENCH_ANSWER_PREFIX = "Best option:("  # MVBench official: the reply starts with it; "(" stays part of the answer
VIDEOMME_PRE = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)
VIDEOMME_PRE_LMMS = VIDEOMME_PRE.replace("based on the video.", "based on the video and the subtitles.")
VIDEOMME_POST = "The best answer is:"
VIDEOMME_POST_LMMS = "\nAnswer with the option's letter from the given choices directly."
VIDEOMME_SUBS = {"official": "This video's subtitles are listed below:\n", "lmms-eval": "This video's subtitles are listed below: \n"}
VIDEOMME_NO_SUBS = "No subtitles available"  # lmms-eval's text for a video without a subtitle file
TEMPCOMPASS_POST = {"multi-choice": "\nPlease directly give the best option:", "yes_no": "\nPlease answer yes or no:",
                    "caption_matching": "\nPlease directly give the best option:", "captioning": ""}  # fmt: skip
TEMPCOMPASS_TYPES = tuple(TEMPCOMPASS_POST)

_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[.)]\s*(.*)$")
_CAPTION_LINE = re.compile(r"^(?:Sentence|Caption|Option) \w+: ")

# MVBench keeps each task's videos in a source folder under video/: the official layout (its data list), the
# clips added later in data0613.zip (unpacked as data0613/<folder>), then lmms-eval's pre-cut segments (True:
# start/end are already applied, so they are dropped). Looked up in this order, after video/<file> itself.
_STAR = (("star/Charades_v1_480", False), ("data0613/star/Charades_v1_480", False), ("star/Charades_segment", True))
_CLEVRER = (("clevrer/video_validation", False), ("data0613/clevrer/video_validation", False))
MVBENCH_FOLDERS: dict[str, tuple[tuple[str, bool], ...]] = {
    "action_sequence": _STAR,
    "action_prediction": _STAR,
    "object_interaction": _STAR,
    "action_localization": (("sta/sta_video", False), ("sta/sta_video_segment", True)),
    "action_antonym": (("ssv2_video", False), ("ssv2_video_mp4", False)),
    "fine_grained_action": (("Moments_in_Time_Raw/videos", False),),
    "unexpected_action": (("FunQA_test/test", False),),
    "object_existence": _CLEVRER,
    "moving_direction": _CLEVRER,
    "moving_count": _CLEVRER,
    "moving_attribute": _CLEVRER,
    "counterfactual_inference": _CLEVRER,
    "object_shuffle": (("perception/videos", False),),
    "action_count": (("perception/videos", False),),
    "state_change": (("perception/videos", False),),
    "character_order": (("perception/videos", False),),
    "scene_transition": (("scene_qa/video", False),),
    "fine_grained_pose": (("nturgbd", False), ("nturgbd_convert", False)),
    "egocentric_navigation": (("vlnqa", False),),
    "episodic_reasoning": (("tvqa/frames_fps3_hq", False), ("tvqa/video_fps3_hq_segment", True)),  # frame folders, then clips
}
MVBENCH_FRAMES_FPS = 3.0  # tvqa/frames_fps3_hq: episodic_reasoning's frame folders (no fps.txt in them)
# MVBench's own evaluation applies start/end only for these tasks (its data list's "bound").
MVBENCH_BOUNDED = frozenset({"action_sequence", "action_prediction", "object_interaction", "action_localization", "episodic_reasoning"})


@dataclass(frozen=True)
class ReadOptions:
    """How records become prompts: the wording (``prompt_style``) and Video-MME's subtitle folder."""

    prompt_style: str = "lmms-eval"
    subtitles: Path | None = None  # Video-MME: the folder of <videoID>.srt; None: frames only


def detect_format(record: dict) -> str | None:
    """The benchmark a record looks like (by its published field names), or None (our own format)."""
    if "candidates" in record and "question" in record:
        return "mvbench"
    if "options" in record and ("videoID" in record or "task_type" in record):
        return "videomme"
    if "dim" in record and "video_id" in record:
        return "tempcompass"
    return None


def benchmark_files(path: Path) -> list[Path]:
    """A benchmark file, or the annotation files of a folder (sorted); a folder of folders (the Hugging Face
    layout, e.g. TempCompass' ``<type>/test-*.parquet``) gives those of its subfolders."""
    if not path.is_dir():
        return [path]
    suffixes = (".json", ".jsonl", ".parquet")
    return sorted(p for p in path.iterdir() if p.suffix in suffixes) or sorted(p for p in path.glob("*/*") if p.suffix in suffixes)


def load_benchmark(
    path: str | Path,
    media_folder: str | Path,
    fmt: str = "auto",
    prompt_style: str = "lmms-eval",
    subtitles: str | Path | None = None,
) -> tuple[list[Sample], dict[str, ChoiceSpec]]:
    """Every record of a benchmark file or folder (MVBench: a folder of per-task JSON files; TempCompass:
    its ``questions/`` folder). ``prompt_style``: ``lmms-eval`` or ``official`` wording (see the module
    docstring); ``subtitles``: Video-MME's ``subtitle/`` folder for the "with subtitles" setting."""
    if prompt_style not in PROMPT_STYLES:
        raise ConfigError(f"prompt style must be one of {PROMPT_STYLES}, got {prompt_style!r}")
    path = Path(path)
    if subtitles is not None and not Path(subtitles).is_dir():
        raise ConfigError(f"--subtitles {subtitles}: not a folder (Video-MME's subtitle/ folder of <videoID>.srt files)")
    options = ReadOptions(prompt_style, None if subtitles is None else Path(subtitles))
    files = benchmark_files(path)
    if not files:
        raise RecordError(str(path), None, "no .json/.jsonl/.parquet benchmark files in this folder")
    samples, specs = [], {}
    for file in files:
        for index, record in _records(file):
            kind = detect_format(record) if fmt == "auto" else fmt
            if kind not in READERS:
                raise RecordError(str(file), index, f"not a {'/'.join(FORMATS)} record (keys {sorted(record)[:8]}); pass --format")
            sample, spec = READERS[kind](record, file, index, Path(media_folder), options)
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
        raise RecordError(str(file), None, "reading Parquet needs pyarrow: pip install 'fastvlm-video[benchmarks]' "
                                           "(or pip install pyarrow; or convert the file to JSONL)") from None  # fmt: skip
    return [{k: (list(v) if hasattr(v, "tolist") else v) for k, v in row.items()} for row in pq.read_table(file).to_pylist()]


def _flatten_tempcompass(data: dict, file: Path) -> list[dict]:
    """``{video_id: {dim: [questions]}}`` (TempCompass' questions/<type>.json) as flat rows. Captioning is judged
    against the first multi-choice question of the same video and dim: from ``multi-choice.json`` beside it."""
    mc = {}
    if file.stem == "captioning" and (file.parent / "multi-choice.json").is_file():
        mc = json.loads((file.parent / "multi-choice.json").read_text(encoding="utf-8"))
    rows = []
    for video_id, dims in data.items():
        if not isinstance(dims, dict):
            raise RecordError(str(file), None, f"video {video_id!r}: expected {{dim: [questions]}}")
        for dim, questions in dims.items():
            for q in questions:
                row = {"video_id": video_id, "dim": dim, "question": q["question"], "answer": q["answer"]}
                if file.stem in TEMPCOMPASS_TYPES:
                    row["type"] = file.stem
                first_mc = (mc.get(video_id, {}).get(dim) or [None])[0]
                if first_mc:
                    row.update(mc_question=first_mc["question"], mc_answer=first_mc["answer"])
                rows.append(row)
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
    """Where an MVBench video (a file, or episodic_reasoning's folder of frames) is: directly, in its task's
    source folder, or in data0613/; and whether start/end still apply (not to pre-cut segments)."""
    direct_precut = media_folder.name.endswith("_segment")  # --media_folder pointed straight at pre-cut clips
    for folder, precut in (("", direct_precut), *MVBENCH_FOLDERS.get(task, ())):
        path = _confined(media_folder, f"{folder}/{video}" if folder else video, file, index)
        if path.exists():
            return str(path), not precut
    return str(media_folder / video), True  # missing: reported as a media error of this sample


def _need(record: dict, keys: tuple[str, ...], file: Path, index: int) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise RecordError(str(file), index, f"missing field(s) {missing}")


def _sample(record_id: str, video: str, prompt: str, answer: str, file: Path, index: int, record: dict, bounds: bool = True,
            system: str | None = None) -> Sample:  # fmt: skip
    start, end = (record.get("start"), record.get("end")) if bounds else (None, None)
    ref = MediaRef(video, "video", None if start is None else float(start), None if end is None else float(end))
    messages = [Message("user", f"{IMAGE_TOKEN}\n{prompt}"), Message("assistant", answer)]
    return Sample(record_id, ([Message("system", system)] if system else []) + messages, [ref], str(file), index)


def mvbench_prompt(question: str, options: list[str], style: str) -> str:
    """MVBench's question text in lmms-eval's or MVBench's own wording (official: after its system text)."""
    if style == "official":
        lines = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
        return f"{MVBENCH_SYSTEM}\nQuestion: {question}\nOptions:\n{lines}\n{MVBENCH_POST}"
    return f"Question:{question}\nOption:\n{format_options(options, '({letter}) {text}')}\n{MVBENCH_POST}\n"


def read_mvbench(record: dict, file: Path, index: int, media_folder: Path, opts: ReadOptions = ReadOptions()) -> tuple[Sample, ChoiceSpec]:
    _need(record, ("video", "question", "candidates", "answer"), file, index)
    options = [str(c) for c in record["candidates"]]
    task = str(record.get("task", file.stem))
    extra = {}
    answer = options.index(str(record["answer"])) if str(record["answer"]) in options else None
    if answer is None:  # scored wrong and counted, as lmms-eval does, never a stop
        extra["problem"] = f"the answer {record['answer']!r} is not one of the candidates"
        logger.warning("%s, record %d: %s %s: this question is scored wrong", file, index, extra["problem"], options)
    prompt = mvbench_prompt(str(record["question"]), options, opts.prompt_style)
    video, bounds = _mvbench_video(media_folder, task, str(record["video"]), file, index)
    bounds = bounds and (task in MVBENCH_BOUNDED or task not in MVBENCH_FOLDERS)
    official = opts.prompt_style == "official"
    reference = LETTERS[answer] if answer is not None else str(record["answer"])
    sample = _sample(f"{task}/{record.get('id', index)}", video, prompt, reference, file, index, record, bounds,
                     MVBENCH_SYSTEM if official else None)  # fmt: skip
    spec = ChoiceSpec(options, answer, groups={"task": task}, kind="mvbench", extra=extra,
                      answer_prefix=MVBENCH_ANSWER_PREFIX if official else "")  # fmt: skip
    return sample, spec


def videomme_prompt(question: str, options: list[str], style: str, subtitles: str | None = None) -> str:
    """Video-MME's prompt; ``subtitles`` (a slot filled at the sampled frames, or lmms-eval's "none" text) when set."""
    if style == "official":
        body = f"{VIDEOMME_PRE}\n{question}\n" + "\n".join(options) + f"\n{VIDEOMME_POST}"
    elif subtitles is None:
        body = f"{VIDEOMME_PRE_LMMS}\n{question}\n" + "\n".join(options) + f"\n{VIDEOMME_POST_LMMS}"
    else:  # lmms-eval videomme_w_subtitle
        body = f"{VIDEOMME_PRE_LMMS}\n{question}\n" + "\n".join(options) + f"\n{VIDEOMME_POST}"
    return body if subtitles is None else f"{VIDEOMME_SUBS[style]}{subtitles}\n{body}"


def read_videomme(record: dict, file: Path, index: int, media_folder: Path, opts: ReadOptions = ReadOptions()) -> tuple[Sample, ChoiceSpec]:
    _need(record, ("question", "options", "answer"), file, index)
    raw_options = [str(o) for o in record["options"]]
    options = [_OPTION_LINE.match(o).group(2) if _OPTION_LINE.match(o) else o for o in raw_options]
    letter = str(record["answer"]).strip()[:1].upper()
    answer = LETTERS.index(letter) if letter and letter in LETTERS[: len(options)] else None
    extra = {} if answer is not None else {"problem": f"the answer {record['answer']!r} is not a letter of the {len(options)} options"}
    if answer is None:
        logger.warning("%s, record %d: %s: this question is scored wrong", file, index, extra["problem"])
    video_id = record.get("videoID") or record.get("video_id")
    if not video_id:
        raise RecordError(str(file), index, "missing field 'videoID'")
    subtitles = None
    if opts.subtitles is not None:
        srt = opts.subtitles / f"{video_id}.srt"
        subtitles = subtitle_slot(srt.resolve()) if srt.is_file() else VIDEOMME_NO_SUBS
    shown = [o if _OPTION_LINE.match(o) else f"{LETTERS[i]}. {o}" for i, o in enumerate(raw_options)]  # as published: "A. .."
    prompt = videomme_prompt(str(record["question"]), shown, opts.prompt_style, subtitles)
    groups = {"task": str(record.get("task_type", "all")), "category": str(record.get("domain", "all"))}
    if "duration" in record:
        groups["duration"] = str(record["duration"])
    if "sub_category" in record:
        groups["sub_category"] = str(record["sub_category"])
    record_id = str(record.get("question_id", index))
    sample = _sample(record_id, _find_video(media_folder, video_id, file, index), prompt, letter, file, index, record)
    return sample, ChoiceSpec(options, answer, groups=groups, kind="videomme", extra=extra)


def tempcompass_type(record: dict, file: Path) -> str:
    """multi-choice, yes_no, caption_matching or captioning: from the file (questions/<type>.json, or the HF
    <type>/test-*.parquet folder), else from the record's shape."""
    for name in (record.get("type"), file.stem, file.parent.name):
        if name in TEMPCOMPASS_TYPES:
            return name
    answer, question = str(record.get("answer", "")), str(record.get("question", ""))
    if answer.strip().lower() in ("yes", "no"):
        return "yes_no"
    if _CAPTION_LINE.match(answer):
        return "caption_matching"
    if "mc_question" in record or question.rstrip().endswith("Generated Caption:"):
        return "captioning"
    return "multi-choice"


def read_tempcompass(record: dict, file: Path, index: int, media_folder: Path, opts: ReadOptions = ReadOptions()) -> tuple[Sample, ChoiceSpec]:
    _need(record, ("video_id", "question", "answer", "dim"), file, index)
    qtype = tempcompass_type(record, file)
    question, answer_text = str(record["question"]), str(record["answer"])
    extra = {"question": question, "answer": answer_text}
    groups = {"task": str(record["dim"]), "type": qtype}
    if qtype == "multi-choice":
        options = [m.group(2) for m in map(_OPTION_LINE.match, question.split("\n")) if m]
        letter = answer_text.strip()[:1].upper()
        answer = LETTERS.index(letter) if options and letter in LETTERS[: len(options)] else None
        spec = ChoiceSpec(options, answer, groups=groups, kind="tempcompass", extra=extra)
        reference = letter
    elif qtype == "yes_no":
        answer = ("yes", "no").index(answer_text.strip().lower()) if answer_text.strip().lower() in ("yes", "no") else None
        spec = ChoiceSpec(["yes", "no"], answer, lettered=False, groups=groups, kind="tempcompass/yes_no", extra=extra)
        reference = answer_text
    elif qtype == "caption_matching":
        lines = question.split("\n")[1:]
        labels = [line.split(": ")[0] for line in lines]
        options = [line.split(": ", 1)[1] if ": " in line else line for line in lines]
        label = answer_text.split(": ")[0]
        answer = labels.index(label) if label in labels else None
        spec = ChoiceSpec(options, answer, labels=labels, lettered=False, groups=groups, kind="tempcompass/caption_matching", extra=extra)
        reference = answer_text
    else:  # captioning: free text, judged by an LLM against a multiple-choice question
        extra.update(mc_question=str(record.get("mc_question", "")), mc_answer=str(record.get("mc_answer", "")))
        spec = ChoiceSpec([], None, groups=groups, kind="tempcompass/captioning", extra=extra)
        answer, reference = 0, answer_text
        if not record.get("mc_question"):
            extra["problem"] = "no multi-choice question to judge the caption against (multi-choice.json beside captioning.json)"
    if answer is None:
        extra["problem"] = f"cannot read the answer {answer_text!r} of this {qtype} question"
        logger.warning("%s, record %d: %s: it is scored wrong", file, index, extra["problem"])
    prefix = "" if qtype == "multi-choice" else f"{qtype}/"  # multi-choice ids as before
    record_id = str(record.get("id", f"{prefix}{record['video_id']}/{record['dim']}/{index}"))
    video = _find_video(media_folder, str(record["video_id"]), file, index)
    prompt = f"{question}{TEMPCOMPASS_POST[qtype]}"
    return _sample(record_id, video, prompt, reference, file, index, record), spec


READERS: dict[str, Callable] = {"mvbench": read_mvbench, "videomme": read_videomme, "tempcompass": read_tempcompass}


def is_benchmark(path: str | Path) -> bool:
    """Does ``path`` (a file, or a folder of per-task files) hold benchmark records rather than our own?"""
    files = benchmark_files(Path(path))
    if any(f.suffix == ".parquet" for f in files):
        return True  # our own records are never Parquet: the benchmark reader says what it needs (pyarrow)
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


def reference_specs(samples: list[Sample]) -> dict[str, ChoiceSpec]:
    """Plain records as a closed label set (``--task classification --score choices`` without ``class``): the
    candidates are the distinct reference answers (after normalisation; each shown as its most common
    spelling), the same for every record; the class of a record is its normalised reference."""
    spellings: dict[str, dict[str, int]] = {}
    reference = {}
    for s in samples:
        text = s.messages[-1].content if s.messages and s.messages[-1].role == "assistant" else ""
        key = normalize_answer(text)
        if key:
            reference[s.id] = key
            counts = spellings.setdefault(key, {})
            counts[text] = counts.get(text, 0) + 1
    shown = {key: max(counts, key=counts.get) for key, counts in spellings.items()}
    labels = sorted(shown.values())
    if len(labels) < 2:
        return {}
    return {sid: ChoiceSpec(labels, labels.index(shown[key]), lettered=False, groups={"class": key}) for sid, key in reference.items()}

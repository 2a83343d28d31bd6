"""Batch evaluation: answer every sample of a data file, score it, and write the results as they come.

``evaluate`` writes ``OUT/predictions.jsonl`` batch by batch (so ``resume=True`` skips the samples
already done), then ``OUT/metrics.json`` and ``OUT/report.html``. A sample whose media is broken
becomes a row with its ``error``: counted, never scored, never a crash.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

from tqdm import tqdm

from ..data.frame_cache import open_frame_cache
from ..data.preflight import preflight
from ..data.records import Sample
from ..data.subtitles import filled_text
from ..errors import ConfigError, MediaError
from .answer_rules import RULES
from .benchmarks import MVBENCH_FRAMES_FPS, class_specs, is_benchmark, load_benchmark, reference_specs
from .choices import NORMS, ChoiceSpec, judge, load_judge, reply_text, score_choices_batch
from .metrics import exact_match, summarize
from .predictions import FRAMES, METRICS, PREDICTIONS, append_rows, read_json, read_rows, write_json
from .predictor import Predictor, Prompt
from .prefetch import batched, prefetch
from .ranks import Ranks, merge_rows, part_files
from .text_metrics import TextScorer, corpus_bleu
from .thumbnails import save_strip

logger = logging.getLogger(__name__)

SETTINGS = "settings.json"  # what produced OUT's predictions; a resume must match it


def split_question(sample: Sample):
    """The conversation up to its last user turn, and the reference answer that follows it."""
    last = max(i for i, m in enumerate(sample.messages) if m.role == "assistant")
    return sample.messages[:last], sample.messages[last].content


def prepare_row(
    predictor: Predictor, sample: Sample, frames_dir: Path | None = None, specs: dict[str, ChoiceSpec] | None = None
) -> tuple[dict, Prompt | None]:
    """A sample's result row (id, media, question, reference) and its prompt; broken media -> ``error``, no prompt."""
    messages, reference = split_question(sample)
    row = {"id": sample.id, "media": [ref.path for ref in sample.media], "question": messages[-1].content, "reference": reference}
    spec = (specs or {}).get(sample.id)
    try:
        prefix = {"answer_prefix": spec.answer_prefix} if spec is not None and spec.answer_prefix else {}
        prompt = predictor.prepare(messages, sample.media, **prefix)
    except MediaError as exc:
        logger.warning("%s: %s", sample.where, exc)
        row.update(prediction=None, error=str(exc), reason=exc.reason)
        if spec is not None:
            row["groups"] = spec.groups  # counted per task as unscored
        return row, None
    row["timestamps"] = prompt.timestamps
    row["question"] = filled_text(row["question"], prompt.timestamps)  # Video-MME subtitles as the model saw them
    if frames_dir is not None and prompt.pixel_values is not None:
        row["frames"] = save_strip(prompt.pixel_values, frames_dir, sample.id)
    return row, prompt


def predict_batches(
    predictor: Predictor,
    samples: Sequence[Sample],
    batch_size: int = 8,
    max_new_tokens: int = 32,
    frames_dir: Path | None = None,
    specs: dict[str, ChoiceSpec] | None = None,
    score: str = "generate",
    norm: str = "sum",
    rule: str = "default",
    llm_judge: Callable[[dict], str] | None = None,
    decode_threads: int = 1,
) -> Iterator[list[dict]]:
    """Yield the result rows of each batch (broken media -> a row with ``error`` instead of a prediction).

    With ``frames_dir``, a thumbnail strip of the frames the model saw is saved there per sample.
    A sample with a ``ChoiceSpec`` (in ``specs``, by id) is judged against its options: its generated
    text is parsed for the chosen option (by the answer ``rule``), or with ``score="choices"`` the options of the
    whole batch are ranked by likelihood in one pass. ``llm_judge`` scores what only an LLM can (``choices.judge``).
    ``decode_threads`` threads decode the next batch's media while the model works on this one (0: decode
    each batch just before it runs).
    """
    specs = specs or {}
    progress = tqdm(total=len(samples), desc="evaluating", unit="sample")
    prepare = partial(prepare_row, predictor, frames_dir=frames_dir, specs=specs)
    for batch in batched(prefetch(prepare, samples, decode_threads, ahead=2 * batch_size), batch_size):
        rows = [row for row, _ in batch]
        pending = [(row, prompt) for row, prompt in batch if prompt is not None]
        ranked = [(r, p) for r, p in pending if score == "choices" and r["id"] in specs and specs[r["id"]].options]
        ranked_ids = {r["id"] for r, _ in ranked}
        to_generate = [(r, p) for r, p in pending if r["id"] not in ranked_ids]
        answers = predictor.generate([p for _, p in to_generate], max_new_tokens=max_new_tokens) if to_generate else []
        for (row, _), answer in zip(to_generate, answers):
            answer = reply_text(specs.get(row["id"]), answer)
            row.update(prediction=answer, exact_match=exact_match(answer, row["reference"]))
        scores = score_choices_batch(predictor, [p for _, p in ranked], [specs[r["id"]].labels for r, _ in ranked]) if ranked else []
        by_id = {row["id"]: s for (row, _), s in zip(ranked, scores)}
        for row, _ in pending:
            if row["id"] in specs:
                judge(row, specs[row["id"]], by_id.get(row["id"]), norm, rule, llm_judge)
        progress.update(len(rows))
        yield rows
    progress.close()


def predict_samples(predictor: Predictor, samples: Sequence[Sample], batch_size: int = 8, max_new_tokens: int = 32) -> Iterator[dict]:
    """Yield one result row per sample (see ``predict_batches``)."""
    for batch in predict_batches(predictor, samples, batch_size, max_new_tokens):
        yield from batch


def evaluate(
    predictor: Predictor,
    samples: Sequence[Sample],
    out: str | Path,
    batch_size: int = 8,
    max_new_tokens: int = 32,
    resume: bool = False,
    overwrite: bool = False,
    scorer: TextScorer | None = None,
    task: str = "auto",
    settings: dict | None = None,
    specs: dict[str, ChoiceSpec] | None = None,
    score: str = "generate",
    norm: str = "sum",
    answer_rule: str = "default",
    llm_judge: Callable[[dict], str] | None = None,
    decode_threads: int = 1,
    ranks: Ranks | None = None,
    sources: dict[str, str] | None = None,
) -> dict | None:
    """Evaluate ``samples`` into ``out``; returns the metrics (also written to ``out/metrics.json``).

    ``specs`` (by sample id) gives closed answer sets (benchmark options, class labels); ``score``:
    ``"generate"`` parses generated text (by ``answer_rule``: ``default`` or ``lmms-eval``), ``"choices"``
    ranks the options by log-likelihood (``norm``). ``llm_judge``: see ``choices.judge``.
    With several processes (``ranks``, see ``infer.ranks``) each answers its share, rank 0 merges the
    rows, writes the metrics and returns them; the other ranks return ``None``. ``sources`` (data file
    by sample id, for several files) adds a ``source`` column and metrics per file (``by_source``).
    """
    from .report import write_report  # here: matplotlib is imported only when a report is written

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scorer = scorer or TextScorer()
    if score not in ("generate", "choices") or norm not in NORMS or answer_rule not in RULES:
        raise ConfigError(f"score must be 'generate' or 'choices', norm one of {NORMS} and the answer rule one of {RULES}, "
                          f"got {score!r} / {norm!r} / {answer_rule!r}")  # fmt: skip
    if score == "choices" and not specs:
        raise ConfigError("--score choices needs candidate answers: benchmark records with options, records with a 'class', "
                          "or --task classification (the distinct reference answers become the candidates)")  # fmt: skip
    settings = {**(settings or {}), "max_new_tokens": max_new_tokens, "scores": scorer.metrics}
    if score == "choices":  # only then: a run started before --score existed still resumes
        settings.update(score=score, choice_norm=norm)
    if answer_rule != "default":
        settings["answer_rule"] = answer_rule
    _check_ids(samples)
    ranks = ranks or Ranks()
    _start(out, settings, resume, overwrite, ranks)
    own, orphans = ranks.part_file(out), _orphans(out, ranks)
    seen = [read_rows(own, repair=True)]
    if ranks.is_main:  # rows of an earlier run with another number of processes
        seen += [read_rows(path) for path in ([out / PREDICTIONS] if own != out / PREDICTIONS else []) + orphans]
    done = set().union(*ranks.all_gather({row["id"] for rows in seen for row in rows}))
    todo = ranks.shard([s for s in samples if s.id not in done])
    if done:
        logger.info("resuming: %d of %d samples already done", len(done & {s.id for s in samples}), len(samples))
    batches = predict_batches(predictor, todo, batch_size, max_new_tokens, out / FRAMES, specs, score, norm, answer_rule, llm_judge, decode_threads)
    for rows in batches:
        ok = [r for r in rows if not r.get("error") and not r.get("lettered") and not r.get("kind")]  # a chosen letter has no text to score
        for row, scores in zip(ok, scorer([r["prediction"] for r in ok], [r["reference"] for r in ok])):
            row["scores"] = scores
        for row in rows if sources else ():
            row["source"] = sources[row["id"]]
        append_rows(own, rows)
    if ranks.size > 1 or orphans:
        _merge(out, [s.id for s in samples], ranks, orphans)
    if not ranks.is_main:
        return None

    wanted = {s.id for s in samples}
    rows = [r for r in read_rows(out / PREDICTIONS) if r["id"] in wanted]
    metrics = summarize(rows, task=task, corpus_bleu=corpus_bleu)
    text_notes = scorer.notes if metrics["task"] != "multiple_choice" else []
    metrics["notes"] = text_notes + metrics.get("notes", [])
    if sources:
        files = dict.fromkeys(sources.values())
        metrics["by_source"] = {f: summarize([r for r in rows if r.get("source") == f], task=task, corpus_bleu=corpus_bleu) for f in files}
    metrics["settings"] = settings
    write_json(out / METRICS, metrics)
    write_report(out, rows, metrics)
    return metrics


def _check_ids(samples: Sequence[Sample]) -> None:
    seen, dupes = set(), set()
    for s in samples:
        (dupes if s.id in seen else seen).add(s.id)
    if dupes:
        raise ConfigError(f"evaluation needs unique sample ids; repeated: {sorted(dupes)[:10]} (records without an 'id' are "
                          "numbered per file: give them ids, or evaluate the files one at a time)")


def _start(out: Path, settings: dict, resume: bool, overwrite: bool, ranks: Ranks) -> None:
    """Refuse to mix runs: a resume must use the same settings; a fresh run must not clobber by accident.

    Every rank checks; rank 0 clears the shared files and writes the settings, each rank clears its own
    part file (nodes may not share the disk); then they wait for each other.
    """
    existing = _results(out)
    if resume and existing and (out / SETTINGS).is_file():
        before = read_json(out / SETTINGS)
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            raise ConfigError(f"{out}: cannot resume with different settings {changed}; pass --overwrite to start again")
    elif existing and not resume:
        refuse_clobber(out, resume, overwrite)
        ranks.part_file(out).unlink(missing_ok=True)
        if ranks.is_main:
            for path in existing:
                path.unlink(missing_ok=True)
            shutil.rmtree(out / FRAMES, ignore_errors=True)
    if ranks.is_main:
        write_json(out / SETTINGS, settings)
    ranks.barrier()


def _results(out: Path) -> list[Path]:
    """The prediction files in ``out``: ``predictions.jsonl`` and the part files of several processes."""
    return [p for p in (out / PREDICTIONS, *part_files(out)) if p.is_file()]


def _orphans(out: Path, ranks: Ranks) -> list[Path]:
    """Part files no rank of this run appends to (left by a run with more processes); rank 0 merges them."""
    live = {ranks.part_file(out).with_name(f"predictions.rank{r}.jsonl") for r in range(ranks.size)} if ranks.size > 1 else set()
    return [p for p in part_files(out) if p not in live]


def _merge(out: Path, order: list[str], ranks: Ranks, orphans: list[Path]) -> None:
    """Every rank's rows -> ``predictions.jsonl`` in ``order`` (rank 0 writes it), then the part files go."""
    own = ranks.part_file(out)
    gathered = ranks.gather(read_rows(own) if own != out / PREDICTIONS else [])
    if ranks.is_main:
        rows = merge_rows(order, read_rows(out / PREDICTIONS), *gathered, *(read_rows(p) for p in orphans))
        partial = out / f"{PREDICTIONS}.partial"
        partial.unlink(missing_ok=True)
        append_rows(partial, rows)
        partial.replace(out / PREDICTIONS)  # atomic: a kill leaves the part files, not half a merge
    ranks.barrier()  # the merged file is written before any part file goes
    if own != out / PREDICTIONS:
        own.unlink(missing_ok=True)
    if ranks.is_main:
        for path in orphans:
            path.unlink(missing_ok=True)


def refuse_clobber(out: str | Path, resume: bool, overwrite: bool) -> None:
    """Earlier results in ``out`` are continued (``resume``) or replaced (``overwrite``), never silently."""
    existing = _results(Path(out))
    if existing and not (resume or overwrite):
        raise ConfigError(f"{existing[0]} exists: pass --resume to continue it or --overwrite to start again")


def evaluate_checkpoint(
    model: str | Path,
    data: str | Path,
    media_folder: str | Path,
    out: str | Path,
    limit: int | None = None,
    device: str = "auto",
    semantic: bool = True,
    skip_invalid: bool = False,
    num_frames: int | None = None,
    frame_sampling: str | None = None,
    frames_fps: float | None = None,
    allow_outside_media_folder: bool = False,
    data_format: str = "auto",
    frame_cache: str | Path | None = None,
    prompt_style: str = "lmms-eval",
    subtitles: str | Path | None = None,
    judge: str | None = None,
    **kwargs,
) -> dict | None:
    """Check the data and ``out``, load the checkpoint, then ``evaluate``; ``kwargs`` go to ``evaluate``.

    Under ``torchrun``/``accelerate launch`` each process evaluates its share (``infer.ranks``); only
    rank 0 returns the metrics.

    ``data_format``: ``auto`` (a benchmark's published fields, else our records), a benchmark name
    (``mvbench``, ``videomme``, ``tempcompass``) or ``records``. Benchmarks: ``prompt_style`` (``lmms-eval`` or
    ``official`` wording), ``subtitles`` (Video-MME's subtitle folder), ``judge`` (``module:function``, an LLM judge).
    """
    llm_judge = load_judge(judge) if judge else None
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    samples, specs, invalid, sources, benchmark = [], {}, [], {}, False
    for path in paths:  # each file read in its own layout, with its own closed answer set
        if data_format != "records" and (data_format != "auto" or is_benchmark(path)):
            found, found_specs = load_benchmark(path, media_folder, data_format, prompt_style, subtitles)
            benchmark = True
        else:
            found, bad = preflight([path], media_folder, "--media_folder", skip_invalid, allow_outside_media_folder)
            task = kwargs.get("task", "auto")
            found_specs = class_specs(found) if task in ("auto", "classification") else {}
            if not found_specs and task == "classification" and kwargs.get("score") == "choices":
                found_specs = reference_specs(found)
            invalid += bad
        samples += found
        specs.update(found_specs)
        sources.update((s.id, str(path)) for s in found)
    refuse_clobber(out, kwargs.get("resume", False), kwargs.get("overwrite", False))
    for exc in invalid:
        logger.warning("skipping invalid record: %s", exc)
    samples = samples[:limit] if limit else samples
    _check_ids(samples)  # before the model loads
    if frames_fps is None and any(spec.kind == "mvbench" for spec in specs.values()):
        frames_fps = MVBENCH_FRAMES_FPS  # episodic_reasoning's frame folders (TVQA frames at 3 fps, no fps.txt)
    ranks = Ranks.from_env()
    predictor = Predictor.from_pretrained(model, device=ranks.device(device), num_frames=num_frames, frame_sampling=frame_sampling,
                                          frames_fps=frames_fps)  # fmt: skip
    predictor.frame_cache = open_frame_cache(frame_cache, predictor.video, samples)
    resolved = [str(Path(p).resolve()) for p in paths]
    settings = {"model": str(Path(model).resolve()), "data": resolved[0] if len(paths) == 1 else resolved, **asdict(predictor.video)}
    if benchmark:
        settings["prompt_style"] = prompt_style
        if subtitles is not None:
            settings["subtitles"] = str(Path(subtitles).resolve())
    if judge:
        settings["judge"] = judge
    return evaluate(predictor, samples, out, scorer=TextScorer(semantic=semantic), settings=settings, specs=specs, llm_judge=llm_judge,
                    ranks=ranks, sources=sources if len(paths) > 1 else None, **kwargs)  # fmt: skip

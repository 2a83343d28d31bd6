"""Cheap checks before a model loads: data files, the media folder, and whether media paths resolve.

A wrong media folder is the most common mistake (``prepare`` writes paths relative to the folder it
read, e.g. ``clips/``, not to the folder of the JSON files). Without this check it surfaces after the
model has loaded, as one skipped sample after another. Here it is one error, before anything heavy:
the folder given, a few paths that do not resolve, and the folder where they do, when one is obvious
(the ``media_folder`` that ``prepare`` wrote into ``summary.json`` beside the data, the data's folder,
its parent, the working directory, or a neighbour of the folder given).

``check_media_resolve`` checks only existence (``os.path.exists``, at most ``MAX_PROBED`` distinct files),
to tell a wrong root from a few missing files. ``screen_media`` then probes every media file's header
(``media_probe``: empty, audio-only and half-uploaded files, a text file named ``.mp4``), so training
counts those against ``--max_skip_fraction`` before the model loads and never draws them, and
evaluation leaves them out of the validation loss. Whether every frame decodes is ``fastvlm-video
check``'s job (a clip cut after an intact header is found when it is decoded).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import ConfigError, RecordError, TooManySkippedSamples
from .records import Sample, load_samples

if TYPE_CHECKING:
    from .dataset import Skip

logger = logging.getLogger(__name__)

MAX_PROBED = 2000  # distinct media files stat-ed; enough to tell a wrong root from a few missing files
WRONG_ROOT_SHARE = 0.5  # more than this share missing: the folder is wrong, not a few files
EXAMPLES = 3
LISTED = 20  # unusable samples named one per line in the log (all of them go to skipped_samples.json)


def preflight(
    data_paths: Sequence[str | Path],
    media_folder: str | Path,
    flag: str = "--image_folder",
    skip_invalid: bool = False,
    allow_outside_media_folder: bool = False,
) -> tuple[list[Sample], list[RecordError]]:
    """Training's and evaluation's checks: ``check_media_folder``, then invalid records fail (unless
    ``skip_invalid``) and an empty dataset fails, all before the model loads. Returns ``load_samples``'s pair."""
    samples, invalid = check_media_folder(data_paths, media_folder, flag, allow_outside_media_folder, skip_invalid)
    if not samples:
        raise ConfigError(f"{', '.join(map(str, data_paths))}: no usable record (all invalid or none at all); `fastvlm-video check` lists why")
    return samples, invalid


def check_media_folder(
    data_paths: Sequence[str | Path],
    media_folder: str | Path,
    flag: str = "--image_folder",
    allow_outside_media_folder: bool = False,
    skip_invalid: bool = True,
) -> tuple[list[Sample], list[RecordError]]:
    """One ``ConfigError`` for a missing data file, a missing media folder, or a folder under which most
    media paths do not exist (a wrong root). ``flag`` is how the command spells the folder option.
    Invalid records raise their ``RecordError`` unless ``skip_invalid``. Returns ``load_samples``'s pair."""
    require_files(data_paths, "data file")
    folder = Path(media_folder)
    samples, invalid = load_samples(list(data_paths), folder, skip_invalid=skip_invalid, allow_outside_media_folder=allow_outside_media_folder)
    paths = list(dict.fromkeys(ref.path for s in samples for ref in s.media))
    if not paths:  # text only: no folder needed
        return samples, invalid
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"{flag} {folder} {what}{_suggest_folder(folder, data_paths, _relative(paths, folder), flag)}")
    check_media_resolve(paths, folder, data_paths, flag)
    return samples, invalid


def screen_media(samples: Sequence[Sample], what: str = "training", probe_cache: str | Path | None = "default") -> tuple[list[Sample], list[Skip]]:
    """Probe every media file's header (``media_probe``): (samples whose media all pass, one ``Skip`` per
    sample that has a failing file). The failures are logged once, here, ``LISTED`` at most by name."""
    from .dataset import Skip  # torch and FFmpeg load only when media are probed (predict and check need neither here)
    from .media_probe import probe_media

    failures = probe_media((ref for s in samples for ref in s.media), probe_cache)
    usable, unusable = [], []
    for sample in samples:
        reason = next((failures[key] for key in ((r.path, r.kind) for r in sample.media) if key in failures), None)
        if reason is None:
            usable.append(sample)
        else:
            unusable.append(Skip("media", sample.where, reason))
    if unusable:
        lines = [f"  {s.where}: {s.reason}" for s in unusable[:LISTED]]
        if len(unusable) > LISTED:
            lines.append(f"  ... and {len(unusable) - LISTED} more (all in skipped_samples.json)")
        logger.warning("%d of %d %s samples have unusable media (start-up probe); they are left out:\n%s",
                       len(unusable), len(samples), what, "\n".join(lines))  # fmt: skip
    return usable, unusable


def check_unusable_share(unusable: Sequence[Skip], total: int, allowed: int, max_fraction: float) -> None:
    """``TooManySkippedSamples`` before the model loads when more training samples failed the probe than
    ``--max_skip_fraction`` tolerates (``allowed`` of ``total``), naming every one of them."""
    if len(unusable) <= allowed:
        return
    listed = "\n".join(f"  {s.where}: {s.reason}" for s in unusable)
    raise TooManySkippedSamples(
        f"{len(unusable)} of {total} training samples have unusable media (more than {max_fraction:.0%} of the data), "
        f"found before the model loaded. Fix or drop them (`fastvlm-video check` lists every problem), "
        f"or raise --max_skip_fraction:\n{listed}"
    )


def require_files(paths: Sequence[str | Path], what: str = "file", folders: bool = False) -> None:
    """One line per missing file (with the closest name in its folder), all in one ``ConfigError``.

    ``folders``: a directory is accepted too (media, where a folder of frames is a video)."""
    lines = []
    for path in map(Path, paths):
        if path.is_file() or (folders and path.is_dir()):
            continue
        reason = "is a directory" if path.is_dir() else "not found"
        lines.append(f"{what} {path}: {reason}{_close_name(path)}")
    if lines:
        raise ConfigError("\n".join(lines))


def check_media_resolve(paths: Sequence[str], folder: Path, data_paths: Sequence[str | Path], flag: str) -> None:
    """Error when most media ``paths`` (joined to ``folder``) do not exist (a wrong root); warn when a few do not."""
    step = max(1, len(paths) // MAX_PROBED)
    probed = paths[::step][:MAX_PROBED]
    missing = [p for p in probed if not os.path.exists(p)]
    if not missing:
        return
    share = f"{len(missing)} of {len(probed)}{' probed' if len(probed) < len(paths) else ''} media files"
    examples = ", ".join(missing[:EXAMPLES]) + (", ..." if len(missing) > EXAMPLES else "")
    if len(missing) <= WRONG_ROOT_SHARE * len(probed):
        logger.warning("%s not found under %s (e.g. %s): those samples will be skipped", share, folder, examples)
        return
    raise ConfigError(
        f"{share} do not exist under {flag} {folder}, e.g. {examples}. "
        f"Media paths in the data are relative to {flag}{_suggest_folder(folder, data_paths, _relative(missing, folder), flag)}"
    )


def _relative(paths: Sequence[str], folder: Path, limit: int = 20) -> list[Path]:
    """Up to ``limit`` media paths as the data wrote them, relative to ``folder`` (absolute ones left out)."""
    relative = []
    for path in paths:
        try:
            relative.append(Path(path).relative_to(folder))
        except ValueError:  # absolute, elsewhere
            continue
        if len(relative) == limit:
            break
    return relative


def _suggest_folder(folder: Path, data_paths: Sequence[str | Path], relative: Sequence[str], flag: str) -> str:
    """'; pass ``{flag} X``' for the first candidate folder under which every path in ``relative`` exists."""
    candidates: list[Path] = []
    for data in map(Path, data_paths):
        summary = data.parent / "summary.json"
        if summary.is_file():
            try:
                written = json.loads(summary.read_text()).get("media_folder")
            except (OSError, ValueError):
                written = None
            if written:
                candidates += [Path(written), data.parent / written]
        candidates += [data.parent, data.parent.parent]
    candidates += [Path("."), folder.parent]
    if folder.parent.is_dir():
        candidates += sorted(p for p in folder.parent.iterdir() if p.is_dir() and not p.name.startswith("."))
    seen = {os.path.realpath(folder)}
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if real in seen or not candidate.is_dir():
            continue
        seen.add(real)
        if relative and all(os.path.exists(candidate / r) for r in relative):
            return f"; they exist under {candidate}: pass {flag} {_quoted(candidate)}"
    return " (`fastvlm-video prepare` prints the folder to use and writes it to summary.json as media_folder)."


def _quoted(path: Path) -> str:
    text = str(path)
    return text if text and " " not in text else repr(text)


def _close_name(path: Path) -> str:
    """'; did you mean X?' when a file in the same folder has a close name."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f" (folder {parent} does not exist either)"
    names = [p.name for p in parent.iterdir()]
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.75)
    return f"; did you mean {parent / close[0]}?" if close else ""

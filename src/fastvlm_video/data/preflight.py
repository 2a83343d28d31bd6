"""Cheap checks before a model loads: data files, the media folder, and whether media paths resolve.

A wrong media folder is the most common mistake (``prepare`` writes paths relative to the folder it
read, e.g. ``clips/``, not to the folder of the JSON files). Without this check it surfaces after the
model has loaded, as one skipped sample after another. Here it is one error, before anything heavy:
the folder given, a few paths that do not resolve, and the folder where they do, when one is obvious
(the ``media_folder`` that ``prepare`` wrote into ``summary.json`` beside the data, the data's folder,
its parent, the working directory, or a neighbour of the folder given).

Only existence is checked (``os.path.exists``, at most ``MAX_PROBED`` distinct files); whether a file
decodes is ``fastvlm-video check``'s job.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, RecordError
from .records import Sample, load_samples

logger = logging.getLogger(__name__)

MAX_PROBED = 2000  # distinct media files stat-ed; enough to tell a wrong root from a few missing files
WRONG_ROOT_SHARE = 0.5  # more than this share missing: the folder is wrong, not a few files
EXAMPLES = 3


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

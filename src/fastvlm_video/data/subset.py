"""Write the kept records of one or more data files, unchanged (``check --write_clean``, ``clean``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .records import iter_records


def write_subset(keep: Iterable[tuple[str, int]], sources: list[str], dest: str | Path) -> list[Path]:
    """Copy the records ``(source, index)`` in ``keep`` to ``dest``, in their original order.

    One source: ``dest`` is the output file. Several: ``dest`` is a folder and each source is written
    there under its own name. ``.jsonl`` outputs are JSON lines, anything else a JSON list.
    """
    wanted: dict[str, set[int]] = {str(s): set() for s in sources}
    for source, index in keep:
        wanted[str(source)].add(index)
    dest = Path(dest)
    if len(sources) == 1:
        targets = {str(sources[0]): dest}
    else:
        names = [Path(s).name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"data files share a name ({', '.join(names)}): cannot write them into one folder")
        targets = {str(s): dest / Path(s).name for s in sources}
    for source, target in targets.items():
        records = [r for i, r in iter_records(source) if i in wanted[source]] if wanted[source] else []
        write_records(records, target)
    return list(targets.values())


def write_records(records: list, path: Path) -> None:
    """Records as a JSON list, or JSON lines when ``path`` ends with ``.jsonl``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    else:
        path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

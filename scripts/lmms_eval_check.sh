#!/usr/bin/env bash
# The lmms-eval adapter test in an environment of its own (lmms-eval 0.7.3 downgrades av, protobuf...:
# docs/evaluation.md). Times the install and the test; writes benchmarks/results/lmms_eval_adapter.txt.
# Not part of CI: the install took 1,723 s (29 min) on the shared 2-core machine (2026-12-03, warm pip cache).
#
#   scripts/lmms_eval_check.sh [VENV]        # default /tmp/venv-lmms (reused if it exists)
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${1:-/tmp/venv-lmms}"
start=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet torch==2.14.1 torchvision==0.29.1 \
    && "$venv/bin/pip" install --quiet -e '.[lmms-eval]' pytest || { echo "install failed" >&2; exit 1; }
fi
installed=$(date +%s)
result="$(PYTHONPATH="$PWD/src" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_lmms_eval_adapter.py 2>&1 | tail -3)"
status=$?
{
  echo "# tests/test_lmms_eval_adapter.py in its own venv, $(date -u '+%F %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "install seconds: $((installed - start)) (0 = venv reused)"
  echo "lmms_eval $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("lmms_eval"))'), torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)')"
  echo "$result"
  echo "test wall seconds: $(( $(date +%s) - installed ))"
} | tee benchmarks/results/lmms_eval_adapter.txt
exit $status

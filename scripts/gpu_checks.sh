#!/usr/bin/env bash
# GPU checks in one short command, for when a GPU machine is lent (results under $OUT):
#   OUT=/tmp/gpu_out bash scripts/gpu_checks.sh            # all checks
#   CHECKS="bench ddp" OUT=/tmp/gpu_out bash scripts/gpu_checks.sh
# 1. bench:  benchmarks/bench_train.py --device cuda (full FastViTHD + Qwen2-0.5B shape, bf16, 8 frames)
# 2. ddp / fsdp / zero2 / zero3: a few training steps of the tiny model on all visible GPUs
#    (grouped + packed batches), each with its own timeout; summary in $OUT/summary.json.
# 3. features: DDP, 2 epochs with --feature_cache (bf16 on CUDA): epoch 2 reads the stored tower outputs.
# Needs a Python with this package's dependencies (PYTHON=..., default python3); ZeRO needs deepspeed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to a folder for the results}
PYTHON=${PYTHON:-python3}
CHECKS=${CHECKS-"bench ddp fsdp zero2 zero3 features"}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT/runs"
NGPU=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
{ nvidia-smi || true; "$PYTHON" -c "import torch, transformers; print(torch.__version__, transformers.__version__)"; } > "$OUT/machine.txt" 2>&1
echo "GPUs: $NGPU" | tee -a "$OUT/machine.txt"
[ "$NGPU" -gt 0 ] || { echo "no CUDA GPU visible: nothing to check"; exit 2; }

FIXTURE="$OUT/fixture"
"$PYTHON" - "$FIXTURE" <<'EOF'
import json, sys
from pathlib import Path
import numpy as np
from fastvlm_video.demo.synthetic import moving_square_frames, write_video
from fastvlm_video.model.processor import make_processor
from fastvlm_video.model.tiny import build_tiny_model, build_tiny_tokenizer

root = Path(sys.argv[1]); root.mkdir(parents=True, exist_ok=True)
tok = build_tiny_tokenizer()
build_tiny_model(tok).save_pretrained(root / "model"); make_processor(tok, 64).save_pretrained(root / "model")
rng = np.random.default_rng(0)
rows = []
for k, d in enumerate(["left", "right", "up", "down"] * 4):
    write_video(root / f"{k}.mp4", moving_square_frames(d, rng), fps=8, gop=8)
    rows.append({"id": f"v{k}", "video": f"{k}.mp4", "conversations": [{"from": "human", "value": "<video>\nWhere?"}, {"from": "gpt", "value": d}]})
    rows.append({"id": f"t{k}", "conversations": [{"from": "human", "value": "Say " + d}, {"from": "gpt", "value": d * (1 + k % 3)}]})
(root / "train.json").write_text(json.dumps(rows))
(root / "fsdp.json").write_text(json.dumps({"transformer_layer_cls_to_wrap": ["Qwen2DecoderLayer"]}))
EOF

declare -A EXTRA=(
  [ddp]=""
  [fsdp]="--fsdp full_shard --fsdp_config $FIXTURE/fsdp.json"
  [zero2]="--deepspeed configs/zero2.json"
  [zero3]="--deepspeed configs/zero3.json"
  [features]="--feature_cache $OUT/runs/features-cache --max_steps -1 --num_train_epochs 2"
)
declare -A RC
for check in $CHECKS; do
  log="$OUT/runs/$check.log"
  if [ "$check" = bench ]; then
    timeout 480 "$PYTHON" benchmarks/bench_train.py --device cuda --dtype bfloat16 --sizes 1024 512 --frames 8 \
      --json "$OUT/bench_train_cuda.json" > "$log" 2>&1
  else
    # shellcheck disable=SC2086
    timeout "$STEP_TIMEOUT" "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NGPU" -m fastvlm_video.cli train \
      --model_name_or_path "$FIXTURE/model" --data_path "$FIXTURE/train.json" --image_folder "$FIXTURE" \
      --image_size 64 --num_video_frames 4 --output_dir "$OUT/runs/$check-out" --per_device_train_batch_size 2 \
      --max_steps 4 --learning_rate 1e-3 --logging_steps 1 --save_strategy no --report_to none --bf16 \
      --group_by_modality_length --packing --dataloader_num_workers 1 ${EXTRA[$check]} > "$log" 2>&1
  fi
  RC[$check]=$?
  echo "$check: rc ${RC[$check]} ($(tail -c 300 "$log" | tr '\n' ' '))"
  rm -rf "$OUT/runs/$check-out"/*.safetensors
done
rm -rf "$FIXTURE"
{ echo "{"; first=1; for c in "${!RC[@]}"; do [ $first = 1 ] || echo ","; first=0; printf '"%s": %s' "$c" "${RC[$c]}"; done; echo "}"; } > "$OUT/summary.json"
cat "$OUT/summary.json"

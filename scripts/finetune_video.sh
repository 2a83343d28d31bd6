#!/usr/bin/env bash
# Fine-tune FastVLM on videos (+ images/text) with sound defaults: the seed's recommended settings.
#
#   MODEL=checkpoints/fastvlm-0.5b DATA=data/train.json VAL_DATA=data/val.json MEDIA=clips \
#       bash scripts/finetune_video.sh [any extra `fastvlm-video train` flag ...]
#
# Every setting below is an environment variable; extra arguments are passed to `fastvlm-video train`
# after the defaults, so they win (e.g. `--learning_rate 1e-5 --lora_enable true`).
# More than one GPU: launched with torchrun on all of them (NUM_GPUS to choose); DEEPSPEED=configs/zero2.json to use ZeRO.
set -euo pipefail

MODEL=${MODEL:-}
DATA=${DATA:-data/train.json}
VAL_DATA=${VAL_DATA:-data/val.json}
MEDIA=${MEDIA:-$(dirname "$DATA")}
OUT=${OUT:-runs/finetune-$(date +%Y%m%d-%H%M%S)}
FRAMES=${FRAMES:-8}            # 4-8 frames: the seed's recommendation
EPOCHS=${EPOCHS:-3}
LR=${LR:-2e-5}
BATCH=${BATCH:-1}              # per device
GRAD_ACC=${GRAD_ACC:-8}
EVAL_STEPS=${EVAL_STEPS:-50}   # evaluate and save every 50 steps
MAX_LEN=${MAX_LEN:-auto}       # auto: the longest sample (8 frames x 256 tokens at 1024 px = 2048 image tokens + text), capped by the model
WORKERS=${WORKERS:-4}
DEEPSPEED=${DEEPSPEED:-}
PYTHON=${PYTHON:-python}

if [ -z "$MODEL" ]; then
  cat >&2 <<'MSG'
error: no model given. Set MODEL to a local FastVLM checkpoint directory, e.g.

  MODEL=checkpoints/fastvlm-0.5b bash scripts/finetune_video.sh

Supported: a Hugging Face `fast_vlm` checkpoint directory (config.json with "model_type": "fast_vlm"),
or one converted from Apple's ml-fastvlm release with `fastvlm-video convert SRC DST` (see docs/models.md).
This script never downloads weights: fetch them yourself first (e.g. `huggingface-cli download ...`).
To try the pipeline without a model: `make demo`.
MSG
  exit 2
fi
for f in "$DATA" "$VAL_DATA"; do
  [ -f "$f" ] || { echo "error: data file '$f' not found (set DATA / VAL_DATA)" >&2; exit 2; }
done

NUM_GPUS=${NUM_GPUS:-$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)}
if [ "$NUM_GPUS" -gt 0 ]; then
  HARDWARE=(--bf16 true --tf32 true --activation_checkpointing true)
else
  echo "note: no GPU found: training on CPU in float32 (slow; fine for tiny models)" >&2
  HARDWARE=(--use_cpu true)
fi
[ -n "$DEEPSPEED" ] && HARDWARE+=(--deepspeed "$DEEPSPEED")

if [ "$NUM_GPUS" -gt 1 ]; then
  LAUNCH=(torchrun --standalone --nproc_per_node "$NUM_GPUS" -m fastvlm_video.cli)
else
  LAUNCH=("$PYTHON" -m fastvlm_video.cli)
fi

set -x
"${LAUNCH[@]}" train \
  --model_name_or_path "$MODEL" \
  --data_path "$DATA" \
  --validation_data_path "$VAL_DATA" \
  --image_folder "$MEDIA" \
  --num_video_frames "$FRAMES" \
  --image_aspect_ratio pad \
  --model_max_length "$MAX_LEN" \
  --output_dir "$OUT" \
  --num_train_epochs "$EPOCHS" \
  --per_device_train_batch_size "$BATCH" \
  --per_device_eval_batch_size "$BATCH" \
  --gradient_accumulation_steps "$GRAD_ACC" \
  --learning_rate "$LR" \
  --weight_decay 0.0 \
  --lr_scheduler_type cosine \
  --warmup_ratio 0.03 \
  --eval_strategy steps --eval_steps "$EVAL_STEPS" \
  --save_strategy steps --save_steps "$EVAL_STEPS" --save_total_limit 3 \
  --load_best_model_at_end true --metric_for_best_model eval_loss \
  --logging_steps 1 \
  --report_to tensorboard \
  --dataloader_num_workers "$WORKERS" \
  "${HARDWARE[@]}" \
  "$@"
"$PYTHON" -m fastvlm_video.cli plot "$OUT" || echo "note: plotting failed; the run itself is saved in $OUT" >&2

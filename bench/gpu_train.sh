#!/usr/bin/env bash
# The prepared full-size run for a GPU lease (one call; see README "Training on a GPU").
#
#   OUT=DIR TRAIN_SECONDS=400 [TRAIN_FLAGS="..."] bash bench/gpu_train.sh
#
# 1. bench/train_throughput.py on cuda at batch 32 and 256 -> $OUT/train_throughput_cuda.json
# 2. a 12-step calibration of the all-family training at batch 256 (also a smoke test of
#    training, checkpointing and evaluation on the device) -> seconds per step
# 3. the all-family training sized to TRAIN_SECONDS by that calibration -> $OUT/run/
#    (final.pt is the checkpoint; the exact train command is printed before it starts).
#    TRAIN_FLAGS go to both trainings (TRAIN_FLAGS= for none); by default the sibling
#    code contrast of the CPU default checkpoint (--loss.code-contrast 1), untried on a GPU.
# Batch 256: the GPU step is bound by kernel launches, not arithmetic, so 8 times the CPU
# default's tasks cost little more time per step; memory stays well inside the card (the
# trajectory family 'after', the largest, took 254 MB per task on the CPU with every pair
# computed, so at most 65 GB at batch 256; the default computes fewer rows).
set -euo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
OUT=${OUT:-runs/gpu}
BUDGET=${TRAIN_SECONDS:-400}
BATCH=${BATCH:-256}
WORKERS=${WORKERS:-14}
DEVICE=${DEVICE:-cuda}
read -r -a FLAGS <<< "${TRAIN_FLAGS---loss.code-contrast 1}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

python3 bench/train_throughput.py --device "$DEVICE" --batch-sizes 32 "$BATCH" --steps 4 \
    --json "$OUT/train_throughput_cuda.json"

calib=$(mktemp -d)
python3 -m energy_model.train --out "$calib" --device "$DEVICE" --batch-size "$BATCH" \
    --workers "$WORKERS" --steps 12 --eval-tasks 1 --quiet "${FLAGS[@]}"
sec=$(python3 -c "
import json
r = [json.loads(l) for l in open('$calib/metrics.jsonl')]
r = [x for x in r if 'time' in x]
print((r[-1]['time'] - r[1]['time']) / (len(r) - 2))")
steps=$(python3 -c "print(max(100, int($BUDGET / ($sec * 1.1)) // 100 * 100))")
echo "calibration: $sec s/step at batch $BATCH -> $steps steps"

cmd=(python3 -m energy_model.train --out "$OUT/run" --device "$DEVICE" --batch-size "$BATCH"
     --workers "$WORKERS" --steps "$steps" --eval-every 0 --eval-tasks 4 --quiet "${FLAGS[@]}")
echo "train command: ${cmd[*]}"
"${cmd[@]}"
python3 -c "
import json
e = json.load(open('$OUT/run/eval.json'))['concepts']
print('held-out success (4 tasks per unit):', round(sum(r['success_rate'] for r in e.values()) / len(e), 3))"

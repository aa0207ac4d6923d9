#!/usr/bin/env bash
# The prepared full-size run for a GPU lease (one call; see README "Training on a GPU").
#
#   OUT=DIR TRAIN_SECONDS=450 [LIMIT_SECONDS=585] bash bench/gpu_train.sh [JOBS_FILE]
#
# JOBS_FILE (default bench/gpu_jobs.txt) holds one training per line, "NAME FLAGS...";
# '#' starts a comment. The jobs run side by side on the one GPU: a step is bound by the
# launch of some ten thousand small kernels on the host, not by the GPU's arithmetic
# (README: 0.27 s per step at batch 32 and at 256), so several processes share the card
# at little cost each.
# 1. a 12-step calibration of every job, all at once (also a smoke test of training,
#    checkpoints and evaluation on the device) -> seconds per step under that contention
# 2. every job sized to TRAIN_SECONDS by its calibration and run at once, each under a
#    hard timeout that ends them LIMIT_SECONDS (the lease call's) after the start at the
#    latest; the exact train commands are printed before they start
# 3. the run directories -> $OUT/runs.tgz, whatever state they reached (last.pt every 100
#    steps); logs in $OUT/log.txt
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
OUT=${OUT:-runs/gpu}
BUDGET=${TRAIN_SECONDS:-360}
LIMIT=${LIMIT_SECONDS:-100000}
WORKERS=${WORKERS:-3}
DEVICE=${DEVICE:-cuda}
JOBS=${1:-bench/gpu_jobs.txt}
RUNS=${RUNS:-/tmp/gpu_runs}
mkdir -p "$OUT" "$RUNS/calib"
exec > >(tee -a "$OUT/log.txt") 2>&1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

names=() flags=()
while read -r name rest; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    names+=("$name") flags+=("$rest")
done < "$JOBS"

common=(--device "$DEVICE" --workers "$WORKERS" --eval-every 0 --quiet)
pids=()  # waited for by pid: a bare wait would also wait for the tee above
for i in "${!names[@]}"; do
    read -r -a f <<< "${flags[$i]}"
    timeout 150 python3 -m energy_model.train --out "$RUNS/calib/${names[$i]}" "${common[@]}" \
        --steps 12 --eval-tasks 1 "${f[@]}" > "$RUNS/calib/${names[$i]}.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

pids=()
for i in "${!names[@]}"; do
    name=${names[$i]}
    read -r -a f <<< "${flags[$i]}"
    sec=$(python3 -c "
import json
r = [json.loads(l) for l in open('$RUNS/calib/$name/metrics.jsonl') if '\"time\"' in l]
print((r[-1]['time'] - r[1]['time']) / (len(r) - 2))") || { echo "$name: calibration failed:"
        tail -5 "$RUNS/calib/$name.log"; continue; }
    steps=$(python3 -c "print(max(100, int($BUDGET / ($sec * 1.15)) // 100 * 100))")
    cmd=(python3 -m energy_model.train --out "$RUNS/$name" "${common[@]}" --steps "$steps"
         "${f[@]}")
    echo "$name: $sec s/step in calibration -> $steps steps: ${cmd[*]}"
    timeout $((BUDGET + 90 < LIMIT - SECONDS - 30 ? BUDGET + 90 : LIMIT - SECONDS - 30)) \
        "${cmd[@]}" > "$RUNS/$name.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

for name in "${names[@]}"; do
    echo "== $name"; tail -3 "$RUNS/$name.log"
    python3 -c "
import json
e = json.load(open('$RUNS/$name/eval.json'))['concepts']
m = lambda k: [r[k] for r in e.values() if r[k] is not None]
avg = lambda v: round(sum(v) / len(v), 4) if v else None
print('success', avg(m('success_rate')), 'generation', avg(m('generation_error')),
      'attention', avg(m('attention_error')))" 2>/dev/null || echo "no eval.json"
done
rm -rf "$RUNS/calib"
tar -czf "$OUT/runs.tgz" -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
ls -la "$OUT"

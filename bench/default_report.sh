#!/usr/bin/env bash
# Every figure the README gives for the shipped all-family checkpoint, measured again.
#
#   bash bench/default_report.sh [CKPT] [OUT]
#
# CKPT defaults to assets/checkpoints/default.pt, OUT (where the JSON files go) to bench/;
# docs/results.md's Figs. 4, 6 and composition go to OUT/results (docs/results for bench/).
# Run it when the default changes: the README's default tables and sentences cite these
# files by name. Two streams run side by side at one thread each (this CPU has two cores);
# each stream's log is OUT/report_{a,b}.log. About 22 minutes here (32 generation chains a query).
set -euo pipefail
CKPT=${1:-assets/checkpoints/default.pt}
OUT=${2:-bench}
mkdir -p "$OUT"
if [ "$OUT" = bench ]; then FIGURES=docs/results; else FIGURES="$OUT/results"; fi
export OMP_NUM_THREADS=1 MPLBACKEND=Agg
export ARGUMENTS=color,closest,farthest,quantity-1,quantity-2,quantity-3,quantity-many
evaluate() { python -m energy_model.evaluate --checkpoint "$CKPT" --threads 1 "$@"; }

stream_a() {
    evaluate --json "$OUT/eval_default.json" --plot "$FIGURES/eval_default.png"
    evaluate --no-baseline --seed 2 --json "$OUT/eval_default_seed2.json"
    evaluate --no-baseline --seed 10 --json "$OUT/eval_default_seed10.json"
    chains() { evaluate --no-baseline --identification langevin "$@"; }
    chains --json "$OUT/eval_default_langevin.json"
    chains --seed 2 --json "$OUT/eval_default_langevin_seed2.json"
    chains --restarts 1 --json "$OUT/eval_default_restarts1.json"
    chains --restarts 1 --seed 2 --json "$OUT/eval_default_restarts1_seed2.json"
    evaluate --concepts quantity-1,quantity-many,color,north,line \
        --entities 10 12 --json "$OUT/eval_default_10to12.json"
    evaluate --no-baseline --entities 9 12 --json "$OUT/eval_default_9to12.json"
    local parts=()
    for r in 1 2 4 8 16 32; do
        chains --restarts "$r" --concepts "$ARGUMENTS" \
            --json "$OUT/identification_restarts_$r.json"
        parts+=("$OUT/identification_restarts_$r.json")
    done
    python - "$OUT" "${parts[@]}" <<'PY'
import json, os, sys
out, parts = sys.argv[1], sys.argv[2:]
load = lambda name: json.load(open(os.path.join(out, name)))
mean = lambda d: round(sum(v["success_rate"] for v in d["concepts"].values()) / len(d["concepts"]), 4)
path = os.path.join(out, "identification_restarts.json")
table = json.load(open(path)) if os.path.exists(path) else {}  # keeps other models' entries
table["command"] = ("python -m energy_model.evaluate --no-baseline --concepts "
                    + os.environ["ARGUMENTS"]
                    + " --identification langevin --restarts R --json FILE (seed 1, 20 tasks)")
table["attention_success"] = {}
for part in parts:
    d = json.load(open(part))
    table["attention_success"][str(d["restarts"])] = {
        k: v["attention_success"] for k, v in d["concepts"].items()}
table["all_families_mean_success"] = {
    "command": "python -m energy_model.evaluate --no-baseline [--identification langevin "
               "--restarts R] --seed S",
    "restarts 1": {"seed 1": mean(load("eval_default_restarts1.json")),
                   "seed 2": mean(load("eval_default_restarts1_seed2.json"))},
    "restarts 8": {"seed 1": mean(load("eval_default_langevin.json")),
                   "seed 2": mean(load("eval_default_langevin_seed2.json"))},
    "search": {"seed 1": mean(load("eval_default.json")),
               "seed 2": mean(load("eval_default_seed2.json"))}}
json.dump(table, open(path, "w"), indent=1)
PY
    rm "${parts[@]}"
}

stream_b() {
    python bench/test_steps.py --checkpoint "$CKPT" --json "$OUT/test_steps.json"
    python bench/direction_codes.py --checkpoint "$CKPT" --json "$OUT/direction_codes.json"
    python bench/code_or_energy.py --checkpoint "$CKPT" --json "$OUT/code_or_energy.json"
    for shape in square triangle line; do
        python bench/shape_scale.py --checkpoint "$CKPT" --concept "$shape" \
            --json "$OUT/shape_scale_default_$shape.json"
    done
    python bench/reenact_success.py --checkpoint "$CKPT" --controllers mppi ilqr --robots arm \
        --n 4 --json "$OUT/reenact_success.json"
    for name in fig4 fig6 composition; do
        python -m energy_model.experiments "$name" --checkpoint "$CKPT" --threads 1 --out "$FIGURES"
    done
}

stream_a > "$OUT/report_a.log" 2>&1 &
a=$!
stream_b > "$OUT/report_b.log" 2>&1 &
b=$!
status=0
wait "$a" || status=$?
wait "$b" || status=$?
echo "done: $OUT (exit $status)"
exit "$status"

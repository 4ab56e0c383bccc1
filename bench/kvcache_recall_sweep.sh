#!/usr/bin/env bash
# Recall at a KV-cache budget: `mnemo eval qa` on task files (passkey, qa1, qa2 from `mnemo tasks generate`) with the
# full cache and every policy at the given budgets. One JSON object per run (answers included) appended to OUT;
# runs already in OUT (same data, policy, budget) are skipped, so an interrupted sweep resumes.
# usage: bench/kvcache_recall_sweep.sh MNEMO MODEL TOKENIZER OUT.jsonl THREADS "BUDGETS" TASK.jsonl [...]
set -euo pipefail
mnemo=$1 model=$2 tok=$3 out=$4 threads=$5 budgets=$6
shift 6
touch "$out"
for data in "$@"; do
  run() {  # run POLICY [BUDGET]
    if python3 -c "import json,sys; sys.exit(0 if any((j['data'], j['memory'], j['budget']) == (sys.argv[2], sys.argv[3], None if sys.argv[4] == '' else int(sys.argv[4])) for j in map(json.loads, open(sys.argv[1]))) else 1)" "$out" "$data" "$1" "${2:-}"; then
      return
    fi
    "$mnemo" eval qa --model "$model" --tokenizer "$tok" --data "$data" --json -t "$threads" \
      --memory "$1" ${2:+--budget "$2"} >> "$out"
  }
  run full
  for b in $budgets; do
    for p in window sink h2o tova; do run "$p" "$b"; done
  done
done

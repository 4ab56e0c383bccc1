#!/usr/bin/env bash
# Recall at a KV-cache budget: `mnemo eval qa` on task files (passkey, qa1, qa2 from `mnemo tasks generate`) with the
# full cache and every policy at the given budgets. One JSON object per run (answers included) appended to OUT.
# usage: bench/kvcache_recall_sweep.sh MNEMO MODEL.gguf TOKENIZER OUT.jsonl THREADS "BUDGETS" TASK.jsonl [...]
set -euo pipefail
mnemo=$1 model=$2 tok=$3 out=$4 threads=$5 budgets=$6
shift 6
for data in "$@"; do
  run() { "$mnemo" eval qa --model "$model" --tokenizer "$tok" --data "$data" --json -t "$threads" "$@" >> "$out"; }
  run --memory full
  for b in $budgets; do
    for p in window sink h2o tova; do run --memory "$p" --budget "$b"; done
  done
done

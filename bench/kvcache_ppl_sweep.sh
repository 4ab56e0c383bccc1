#!/usr/bin/env bash
# Perplexity at a KV-cache budget: every policy x budgets 1/16..1/2 of the window, token by token, on held-out
# documents (ids from bench/kvcache_ids.py). One JSON object per run appended to OUT.
# usage: bench/kvcache_ppl_sweep.sh MNEMO MODEL.gguf OUT.jsonl THREADS DOC.json [DOC.json ...]
set -euo pipefail
mnemo=$1 model=$2 out=$3 threads=$4
shift 4
for doc in "$@"; do
  n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$doc")
  run() { "$mnemo" perplexity --model "$model" --ids "$doc" --batch 1 --json -t "$threads" "$@" |
            python3 -c "import json,sys; j=json.load(sys.stdin); j['doc']=sys.argv[1]; print(json.dumps(j))" "$doc" >> "$out"; }
  run --memory full
  for p in window sink h2o tova; do
    for b in $((n / 16)) $((n / 8)) $((n / 4)) $((n / 2)); do run --memory "$p" --budget "$b"; done
  done
done

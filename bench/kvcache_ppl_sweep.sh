#!/usr/bin/env bash
# Perplexity at a KV-cache budget: every policy x budgets 1/16..1/2 of the window, token by token, on held-out
# documents (DOCS.jsonl from bench/kvcache_ids.py --window WINDOW), all documents decoding together (--parallel).
# One JSON object per run (with a "documents" array) appended to OUT; runs already in OUT are skipped (resume).
# usage: bench/kvcache_ppl_sweep.sh MNEMO MODEL.gguf OUT.jsonl THREADS DOCS.jsonl WINDOW
set -euo pipefail
mnemo=$1 model=$2 out=$3 threads=$4 docs=$5 n=$6
d=$(grep -c . "$docs")
touch "$out"
run() {  # run POLICY [BUDGET]
  if python3 -c "import json,sys; sys.exit(0 if any((j['memory'], j['budget']) == (sys.argv[2], None if sys.argv[3] == '' else int(sys.argv[3])) for j in map(json.loads, open(sys.argv[1]))) else 1)" "$out" "$1" "${2:-}"; then
    return
  fi
  "$mnemo" perplexity --model "$model" --docs "$docs" --ctx "$n" --parallel "$d" --json -t "$threads" \
    --memory "$1" ${2:+--budget "$2"} >> "$out"
}
run full
for p in window sink h2o tova; do
  for b in $((n / 16)) $((n / 8)) $((n / 4)) $((n / 2)); do run "$p" "$b"; done
done

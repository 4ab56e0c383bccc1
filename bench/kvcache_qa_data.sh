#!/usr/bin/env bash
# Task files for fine-tuning a decoder on qa1/qa2 (`mnemo train qa`) and for recall at a budget (docs/kvcache.md):
#   OUT/train.jsonl       1,200 records: qa1 and qa2 at 128, 256 and 512 tokens, 200 each, corpus train split, shuffled
#   OUT/val.jsonl         16 qa1 + 16 qa2 at 512 tokens, validation split
#   OUT/test_qaN_L.jsonl  24 records each of qa1 and qa2 at 512 and 1,024 tokens, test split
# usage: bench/kvcache_qa_data.sh MNEMO TOKENIZER OUT
set -euo pipefail
mnemo=$1 tok=$2 out=$3
mkdir -p "$out"
gen() { "$mnemo" tasks generate --tokenizer "$tok" "$@" 2>/dev/null; }
s=11
for t in qa1 qa2; do
  for L in 128 256 512; do
    s=$((s + 1))
    gen --task $t --length $L --count 200 --seed $s --split train --out "$out/train_${t}_$L.jsonl"
  done
  gen --task $t --length 512 --count 16 --seed 5 --split validation --out "$out/val_${t}_512.jsonl"
  for L in 512 1024; do gen --task $t --length $L --count 24 --seed 7 --out "$out/test_${t}_$L.jsonl"; done
done
cat "$out"/train_qa*_*.jsonl | shuf --random-source=<(yes) > "$out/train.jsonl"
cat "$out"/val_qa*_512.jsonl > "$out/val.jsonl"

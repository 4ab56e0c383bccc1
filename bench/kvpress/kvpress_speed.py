#!/usr/bin/env python3
"""Speed beside the peer: seconds per question of `mnemo eval qa` against kvpress on the same model, task file,
budget and threads (kvpress_qa.py's protocol: prefill the context, compress it once to the budget, answer greedily).
The two engines alternate within each round, so a busy machine slows both alike; medians over rounds.

usage: .venv/bin/python bench/kvpress/kvpress_speed.py --mnemo build/mnemo MODEL.gguf TOKENIZER.json TASK.jsonl
         [--budget 128] [--threads 2] [--rounds 3] [--limit 8]
Needs .venv-kvpress (bench/kvpress/setup_venv.sh --install). Prints one table row per policy and a JSON summary.
"""
import argparse
import json
import os
import statistics
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PAIRS = [("full", "full"), ("sink", "streaming"), ("tova", "tova"), ("h2o", "observed")]  # mnemo policy, kvpress press


def mnemo_seconds(a, policy):
    cmd = [a.mnemo, "eval", "qa", "-t", str(a.threads), "--model", a.model, "--tokenizer", a.tokenizer, "--data",
           a.data, "--memory", policy, "--json"]
    if policy != "full":
        cmd += ["--budget", str(a.budget)]
    if a.limit:
        cmd += ["--limit", str(a.limit)]
    d = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return (d["prefill_seconds"] + d["answer_seconds"]) / d["records"], d["correct"]


def kvpress_seconds(a):
    py = os.path.join(ROOT, ".venv-kvpress", "bin", "python")
    cmd = [py, os.path.join(ROOT, "bench", "kvpress", "kvpress_qa.py"), a.model, a.tokenizer, a.data, "--budgets",
           str(a.budget), "--threads", str(a.threads), "--presses"] + [p for _, p in PAIRS]
    if a.limit:
        cmd += ["--limit", str(a.limit)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["press"]: (r["seconds_per_record"], r["correct"], r["kvpress"]) for r in rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", default=os.path.join(ROOT, "build", "mnemo"))
    ap.add_argument("model")
    ap.add_argument("tokenizer")
    ap.add_argument("data")
    ap.add_argument("--budget", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=8)
    a = ap.parse_args()
    ours = {p: [] for p, _ in PAIRS}
    theirs = {p: [] for _, p in PAIRS}
    version = None
    for _ in range(a.rounds):
        for policy, _ in PAIRS:
            ours[policy].append(mnemo_seconds(a, policy))
        for press, (secs, correct, version) in kvpress_seconds(a).items():
            theirs[press].append((secs, correct))
    summary = []
    print(f"threads {a.threads}, budget {a.budget}, kvpress {version}, medians of {a.rounds} rounds")
    print("mnemo policy  s/question  right | kvpress press  s/question  right | kvpress/mnemo")
    for policy, press in PAIRS:
        m = statistics.median(s for s, _ in ours[policy])
        k = statistics.median(s for s, _ in theirs[press])
        row = {"mnemo": policy, "kvpress": press, "budget": None if policy == "full" else a.budget,
               "mnemo_seconds_per_question": m, "kvpress_seconds_per_question": k, "ratio": k / m,
               "mnemo_correct": ours[policy][0][1], "kvpress_correct": theirs[press][0][1]}
        summary.append(row)
        print(f"{policy:12s} {m:10.3f}  {row['mnemo_correct']:5d} | {press:13s} {k:10.3f}  {row['kvpress_correct']:5d}"
              f" | {k / m:6.2f}x")
    print(json.dumps({"threads": a.threads, "budget": a.budget, "kvpress": version, "rounds": a.rounds,
                      "rows": summary}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Collect `mnemo eval rmt --json` outputs into an accuracy grid (trained stage x evaluated segments).

Each --row names one trained model and the eval files scored from it; cells of several files with the same
length are pooled (correct and count add up). --baseline adds the row a model would score by giving every sample
the answer most frequent among the targets (from the first row's outputs: every row is scored on the same seed).
Writes the grid JSON that bench/rmt_heatmaps.py --grid draws, and prints the markdown table for docs/rmt.md.

    bench/rmt_grid.py --task detect --out docs/rmt_detect_rerun_grid.json --note "..." \
        --row 1 runs/ev/detgrid-stage-01-*.json --row 2 runs/ev/detgrid-stage-02-*.json ...
"""
import argparse
import json
import os
import sys


def cells(path):
    """{segments: (correct, count)} of one eval output."""
    try:
        doc = json.load(open(path))
    except (OSError, ValueError) as e:
        sys.exit(f"rmt_grid: {path}: cannot read eval output ({e})")
    out = {}
    for result in doc.get("results", []):
        for c in result.get("by_segments", []):
            right, n = out.get(c["segments"], (0, 0))
            out[c["segments"]] = (right + c["correct"], n + c["count"])
    if not out:
        sys.exit(f"rmt_grid: {path}: no results in it")
    return out


def pool(grids):
    """Cells of several files added up per length."""
    out = {}
    for grid in grids:
        for segs, (right, n) in grid.items():
            r0, n0 = out.get(segs, (0, 0))
            out[segs] = (r0 + right, n0 + n)
    return out


def majority(path):
    """{segments: (correct, count)} of answering every sample with its most frequent target: `eval rmt`'s
    one_answer_correct, or for outputs from before it, counted from the samples."""
    out = {}
    for result in json.load(open(path)).get("results", []):
        for c in result.get("by_segments", []):
            if "one_answer_correct" in c:
                out[c["segments"]] = (c["one_answer_correct"], c["count"])
        targets = [s["target"] for s in result.get("samples", [])]
        if targets and result["segments"] not in out:
            out[result["segments"]] = (max(targets.count(t) for t in set(targets)), len(targets))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--out", required=True, help="grid JSON to write")
    ap.add_argument("--note", default="")
    ap.add_argument("--row", nargs="+", action="append", required=True, metavar=("LABEL", "FILE"),
                    help="a trained model's label, then its eval outputs")
    ap.add_argument("--baseline", action="store_true", help="add the one-answer-for-all row")
    args = ap.parse_args()

    rows, table = [], []
    for label, *files in args.row:
        if not files:
            sys.exit(f"rmt_grid: row {label}: no eval files")
        pooled = pool(cells(f) for f in files)
        trained = int(label) if label.isdigit() else label
        for segs in sorted(pooled):
            right, n = pooled[segs]
            rows.append({"trained": trained, "evaluated": segs, "accuracy": right / n, "count": n})
        table.append((label, pooled))

    if args.baseline:
        pooled = pool(majority(f) for f in args.row[0][1:])
        table.append(("one answer for all (the most frequent target)", pooled))
        rows += [{"trained": "majority", "evaluated": s, "accuracy": r / n, "count": n}
                 for s, (r, n) in sorted(pooled.items())]

    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"task": args.task, "rows": rows, "note": args.note}, f)
    os.replace(tmp, args.out)

    lengths = sorted({s for _, pooled in table for s in pooled})
    counts = {n for _, pooled in table for _, n in pooled.values()}
    common = max(counts, key=lambda n: sum(1 for _, p in table for _, m in p.values() if m == n))
    print("| trained \\ evaluated | " + " | ".join(map(str, lengths)) + " |")
    print("|---" * (len(lengths) + 1) + "|")
    for label, pooled in table:
        line = []
        for s in lengths:
            if s not in pooled:
                line.append("–")
                continue
            right, n = pooled[s]
            line.append(f"{right / n:.2f}" + ("" if n == common else f" (n={n})"))
        name = f"stage {label}" if label.isdigit() else label
        print(f"| {name} | " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()

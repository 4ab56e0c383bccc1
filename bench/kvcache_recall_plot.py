#!/usr/bin/env python3
"""Recall at a KV-cache budget, as tables and one picture, from bench/kvcache_recall_sweep.sh's output.

usage: .venv/bin/python bench/kvcache_recall_plot.py RECALL.jsonl OUT.png
One panel per task file: answer accuracy against the budget for every policy, the full cache as a line.
Prints one Markdown table per task file (correct / records).
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(recall: str, out: str) -> None:
    runs = [json.loads(line) for line in open(recall) if line.strip()]
    files = list(dict.fromkeys(r["data"] for r in runs))
    fig, axes = plt.subplots(1, len(files), figsize=(5 * len(files), 3.8), squeeze=False)
    for ax, data in zip(axes[0], files):
        rs = [r for r in runs if r["data"] == data]
        budgets = sorted({r["budget"] for r in rs if r["budget"]})
        policies = list(dict.fromkeys(r["memory"] for r in rs if r["memory"] != "full"))
        print(f"\n{Path(data).name}\n")
        print("| policy | " + " | ".join(str(b) for b in budgets) + " |")
        print("|---|" + "---|" * len(budgets))
        for r in rs:
            if r["memory"] == "full":
                print("| full | " + " | ".join(f"{r['correct']}/{r['records']}" for _ in budgets) + " |")
                ax.axhline(r["accuracy"], color="black", linestyle="--", label="full")
        for p in policies:
            pts = {r["budget"]: r for r in rs if r["memory"] == p}
            print(f"| {p} | " + " | ".join(f"{pts[b]['correct']}/{pts[b]['records']}" if b in pts else "–"
                                         for b in budgets) + " |")
            xs = [b for b in budgets if b in pts]
            ax.plot(xs, [pts[b]["accuracy"] for b in xs], marker="o", label=p)
        ax.set_xscale("log", base=2)
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("cache budget (entries per layer)")
        ax.set_ylabel("answer accuracy")
        ax.set_title(Path(data).stem)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(*sys.argv[1:])

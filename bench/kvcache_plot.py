#!/usr/bin/env python3
"""Plots for docs/kvcache.md from the benchmark outputs.

usage: .venv/bin/python bench/kvcache_plot.py RESULTS_DIR OUT_DIR [STREAM_PICTURE_NAME]
  RESULTS_DIR/ppl.jsonl        `mnemo perplexity --json` lines (bench/kvcache_ppl_sweep.sh; optional)
  RESULTS_DIR/stream_*.json    `mnemo eval stream --json` outputs (one run, or {"runs": [...]})
writes OUT_DIR/kvcache_ppl_budget.png and OUT_DIR/kvcache_stream.png (or STREAM_PICTURE_NAME), and prints the tables as Markdown.
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(res: str, out: str, stream_name: str = "kvcache_stream.png") -> None:
    res, out = Path(res), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (res / "ppl.jsonl").exists():
        budget_plot(res, out)
    stream_plot(res, out, stream_name)


def budget_plot(res: Path, out: Path) -> None:
    runs = [json.loads(line) for line in open(res / "ppl.jsonl") if line.strip()]
    full = [r for r in runs if r["memory"] == "full"]
    fig, ax = plt.subplots(figsize=(6, 4))
    policies = sorted({r["memory"] for r in runs if r["memory"] != "full"})
    budgets = sorted({r["budget"] for r in runs if r["budget"]})
    print("| policy | " + " | ".join(str(b) for b in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    for p in policies:
        pts = sorted((r["budget"], r["ppl"]) for r in runs if r["memory"] == p)
        ax.plot([b for b, _ in pts], [v for _, v in pts], marker="o", label=p)
        row = {b: v for b, v in pts}
        print(f"| {p} | " + " | ".join(f"{row[b]:.2f}" if b in row else "–" for b in budgets) + " |")
    if full:
        ax.axhline(full[0]["ppl"], color="k", ls="--", label=f"full ({full[0]['ppl']:.2f})")
        print(f"| full | {full[0]['ppl']:.2f} (any budget) |")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("budget (entries per layer)")
    ax.set_ylabel("perplexity")
    docs = (len(full[0].get("documents", [])) or 1) if full else "?"
    ax.set_title(f"SmolLM2-135M, {docs} held-out document(s), {full[0]['ctx'] if full else '?'}-token windows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "kvcache_ppl_budget.png", dpi=110)


def stream_plot(res: Path, out: Path, name: str) -> None:
    streams = []
    for f in sorted(res.glob("stream_*.json")):
        if f.stat().st_size > 0:
            j = json.load(open(f))
            streams += j["runs"] if "runs" in j else [j]
    if streams:
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
        for s in streams:
            c = s["curve"]
            lab = f"{s['memory']} @ {s['budget']}" + (" (re-positioned)" if s.get("reposition") else "")
            a1.plot([x["tokens"] for x in c], [x["ppl"] for x in c], marker=".", label=lab)
            a2.plot([x["tokens"] for x in c], [x["rss_bytes"] / 2**20 for x in c], marker=".", label=lab)
            a2.set_ylim(0, max(x["rss_bytes"] for x in c) / 2**20 * 1.2)
            print(f"stream {lab}: ppl {s['ppl']:.2f} over {s['tokens']} tokens, {s['tokens_per_second']:.2f} tok/s, "
                  f"cache {s.get('cache_bytes', 0) / 2**20:.1f} MiB, peak RSS {s['peak_rss_bytes'] / 2**20:.0f} MiB, "
                  f"recent share {s.get('recent_share', 0):.3f}, kept by kind {s.get('kept_by_kind')}, "
                  f"first token kept {[round(x.get('first_token_kept', 0), 2) for x in c]}")
        a1.set_ylabel("perplexity per chunk")
        a2.set_ylabel("resident MiB")
        a2.set_xlabel("tokens read")
        a1.legend()
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(*sys.argv[1:])

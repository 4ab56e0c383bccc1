#!/usr/bin/env python3
"""Pictures of what the RMT memory does, from `mnemo eval rmt ... --attention-out FILE.json` (one sample):

  1. writing: in the segment that holds the fact, the memory rows' attention (last layer) over the segment;
  2. holding: in a segment with no fact, the memory rows' attention: to the memory, or to the new text;
  3. reading: in the last segment, [CLS]'s attention over memory and text, per layer;
plus the full (T,T) map of the last layer for each captured segment.

Also draws the accuracy grid (trained segments x evaluated segments) from a JSON file of
{"rows": [{"trained": N, "evaluated": S, "accuracy": a}, ...]} with --grid ("segment_tokens": 64 unless given).

Usage: .venv/bin/python bench/rmt_heatmaps.py --attention FILE.json --out DIR [--prefix rmt_reason_] [--grid GRID.json]
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def attention_pictures(path, out, prefix="rmt_"):
    d = json.load(open(path))
    m = d["num_mem_tokens"]
    caps = d["captured"]
    n = len(caps)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.4))
    axes = np.atleast_1d(axes)
    for ax, c in zip(axes, caps):
        T = len(c["tokens"])
        a = np.array(c["layers"][-1]).reshape(T, T)
        ax.imshow(a, cmap="viridis", vmax=max(1e-3, np.percentile(a, 99)))
        ax.set_title(f"segment {c['segment']} (last layer)")
        ax.axhline(m + 0.5, color="w", lw=0.5)
        ax.axvline(m + 0.5, color="w", lw=0.5)
        ax.set_xlabel("key: [CLS] mem.. [SEP] text")
        ax.set_ylabel("query")
    fig.suptitle(f"fact: {d['facts']} at tokens {d['fact_positions']}; {d['question']} -> {d['prediction']}")
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{prefix}attention_segments.png"), dpi=110)
    plt.close(fig)

    # Memory rows (queries 1..m) over keys, last layer, segment by segment: writing vs holding.
    fig, axes = plt.subplots(n, 1, figsize=(14, 1.6 * n + 1))
    axes = np.atleast_1d(axes)
    for ax, c in zip(axes, caps):
        T = len(c["tokens"])
        a = np.array(c["layers"][-1]).reshape(T, T)[1:m + 1]
        ax.imshow(a, aspect="auto", cmap="magma")
        ax.set_yticks(range(m))
        ax.set_yticklabels([f"mem{j}" for j in range(m)], fontsize=6)
        ax.set_xticks(range(T))
        ax.set_xticklabels(c["tokens"], rotation=90, fontsize=5)
        ax.set_title(f"segment {c['segment']}: memory queries (last layer)", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{prefix}memory_write_hold.png"), dpi=110)
    plt.close(fig)

    # [CLS] reading in the last segment, every layer.
    c = caps[-1]
    T = len(c["tokens"])
    rows = np.stack([np.array(L).reshape(T, T)[0] for L in c["layers"]])
    fig, ax = plt.subplots(figsize=(14, 3))
    ax.imshow(rows, aspect="auto", cmap="magma")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"layer {i}" for i in range(len(rows))], fontsize=7)
    ax.set_xticks(range(T))
    ax.set_xticklabels(c["tokens"], rotation=90, fontsize=5)
    ax.set_title(f"last segment ({c['segment']}): [CLS] reads memory and question", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, f"{prefix}cls_read.png"), dpi=110)
    plt.close(fig)


def grid_picture(path, out, name):
    doc = json.load(open(path))
    rows = doc["rows"]
    trained = list(dict.fromkeys(r["trained"] for r in rows))  # rows in the file's order: stages, then "7+mixed" ...
    evald = sorted({r["evaluated"] for r in rows})
    g = np.full((len(trained), len(evald)), np.nan)
    for r in rows:
        g[trained.index(r["trained"]), evald.index(r["evaluated"])] = r["accuracy"]
    fig, ax = plt.subplots(figsize=(1.0 * len(evald) + 2, 0.6 * len(trained) + 1.5))
    im = ax.imshow(g, cmap="RdYlGn", vmin=0, vmax=1)
    for i in range(len(trained)):
        for j in range(len(evald)):
            if not np.isnan(g[i, j]):
                ax.text(j, i, f"{g[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(evald)))
    ax.set_xticklabels(evald)
    ax.set_yticks(range(len(trained)))
    ax.set_yticklabels([str(t) for t in trained])
    ax.set_xlabel(f"evaluated segments ({doc.get('segment_tokens', 64)} tokens each)")
    ax.set_ylabel("trained up to (segments)")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attention")
    ap.add_argument("--grid")
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--grid-name", default="rmt_accuracy_grid.png", help="file name of the grid picture in --out")
    ap.add_argument("--prefix", default="rmt_", help="file names of the attention pictures start with this")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.attention:
        attention_pictures(a.attention, a.out, a.prefix)
    if a.grid:
        grid_picture(a.grid, a.out, a.grid_name)


if __name__ == "__main__":
    main()

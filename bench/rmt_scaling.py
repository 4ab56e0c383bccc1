#!/usr/bin/env python3
"""RMT inference: time and peak resident memory against the number of segments (linear time, flat memory).

Each length runs in its own process (`mnemo eval rmt --segments S --count 1 --batch 1 --json`), so the peak RSS
is that length's alone. Reports seconds per segment (inference only; generating the input is excluded) and peak
RSS, and their spread over the lengths (targets: time per segment within 10 %, memory within 5 %); also the
least-squares line time = start + cost x segments and the marginal cost between consecutive lengths.

Usage: .venv/bin/python bench/rmt_scaling.py --model DIR [--mnemo build/mnemo] [--segments 16,64,256,1024,4096]
       [--threads 2] [--task memorize] [--precision fp32|bf16]
"""
import argparse
import json
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mnemo", default="build/mnemo")
    ap.add_argument("--segments", default="16,64,256,1024,4096")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--task", default="memorize")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--precision", default="fp32", help="the encoder's linear layers: fp32 or bf16")
    a = ap.parse_args()
    rows = []
    for s in [int(x) for x in a.segments.split(",")]:
        r = subprocess.run([a.mnemo, "eval", "rmt", "-t", str(a.threads), "--quiet", "--model", a.model, "--task",
                            a.task, "--segments", str(s), "--count", "1", "--batch", "1", "--seed", str(a.seed),
                            "--precision", a.precision, "--json"], check=True, capture_output=True, text=True)
        res = json.loads(r.stdout)["results"][0]
        rows.append({"segments": s, "tokens": res["tokens"], "seconds": res["seconds"],
                     "seconds_per_segment": res["seconds_per_segment_step"], "peak_rss_mb": res["peak_rss_mb"],
                     "correct": res["correct"]})
        print(f"{s:>6} segments {res['tokens']:>9} tokens  {res['seconds']:9.2f} s  "
              f"{1000 * res['seconds_per_segment_step']:7.2f} ms/segment  peak RSS {res['peak_rss_mb']:7.1f} MB  "
              f"answer {'right' if res['correct'] else 'wrong'}", flush=True)
    per = [r["seconds_per_segment"] for r in rows]
    rss = [r["peak_rss_mb"] for r in rows]
    print(f"time per segment: max/min {max(per) / min(per):.3f}; peak RSS: max/min {max(rss) / min(rss):.3f}")
    # Time = start + per-segment cost x S: the least-squares line, and the cost of the segments added between
    # consecutive lengths (a constant marginal cost is what "linear time" means; the start is paid once).
    xs, ts = [r["segments"] for r in rows], [r["seconds"] for r in rows]
    if len(rows) > 1:
        n, mx, mt = len(xs), sum(xs) / len(xs), sum(ts) / len(ts)
        slope = sum((x - mx) * (t - mt) for x, t in zip(xs, ts)) / sum((x - mx) ** 2 for x in xs)
        marg = [(ts[i + 1] - ts[i]) / (xs[i + 1] - xs[i]) for i in range(n - 1)]
        print(f"fit: {mt - slope * mx:.3f} s + {1000 * slope:.2f} ms x segments; marginal ms/segment "
              f"{', '.join(f'{1000 * m:.2f}' for m in marg)} (max/min {max(marg) / min(marg):.3f})")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

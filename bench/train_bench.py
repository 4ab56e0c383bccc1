#!/usr/bin/env python3
"""Training throughput: mnemo vs PyTorch on the same GPT-2-shaped model, batch, sequence and cores, in one run.

For each model size both trainers run the same number of AdamW steps (weight decay 0.1, global-norm clipping at
1.0) on the same random token ids; the first `--warmup` steps are excluded from timing. Reports tokens/s, the ratio
mnemo/PyTorch, and model-FLOPs utilisation (MFU) against the FP32 peak given with --peak-gflops (measured by
bench_gemm's Peak benchmark). Training FLOPs per token, PaLM's convention: 6 x (parameters that multiply: the
blocks and the tied LM head; not the position table) + attention 12 x layers x T x d (the full T x T score
matrix, although a causal model needs only half of it).

PyTorch gets its best CPU settings here: Debian's python3-torch 1.13 is built with BLAS_INFO=generic, i.e. it calls
whatever libblas.so.3 the system's alternatives select — on this machine the Netlib reference BLAS (~2 GFLOP/s).
So PyTorch runs in a child process whose LD_LIBRARY_PATH puts OpenBLAS's libblas.so.3 first (--torch-blas DIR, a
directory holding libblas.so.3 from Debian's libopenblas0-openmp; found automatically when that package is
installed or unpacked, see docs/performance.md). Also: torch.set_num_threads(threads), the fused tanh-GELU kernel
(activation "gelu_pytorch_tanh", the same function as GPT-2's "gelu_new"), no KV-cache outputs (use_cache=False),
multi-tensor AdamW (foreach=True), gradients set to None instead of zeroed.

Usage: .venv/bin/python bench/train_bench.py [--mnemo build/mnemo] [--threads 2] [--steps 20] [--peak-gflops G]
                                             [--torch-blas DIR | --torch-blas system]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import torch_env

SIZES = {"4L-d256": dict(n_layer=4, n_embd=256, n_head=4), "6L-d512": dict(n_layer=6, n_embd=512, n_head=8)}


def train_flops_per_token(cfg, vocab, T):
    d, L = cfg["n_embd"], cfg["n_layer"]
    params = L * 12 * d * d + vocab * d  # block matrices (biases and LayerNorms are negligible) + tied LM head
    return 6 * params + 12 * L * T * d


def torch_tokens_per_s(cfg, vocab, B, T, steps, warmup, threads, ids):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=T, resid_pdrop=0, embd_pdrop=0,
                                       attn_pdrop=0, activation_function="gelu_pytorch_tanh", use_cache=False,
                                       **cfg))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, betas=(0.9, 0.95), foreach=True)
    data = torch.tensor(ids, dtype=torch.long)
    rng = np.random.default_rng(0)
    t0 = None
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        starts = rng.integers(0, len(ids) - T, size=B)
        x = torch.stack([data[s:s + T] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return steps * B * T / (time.perf_counter() - t0)


def torch_in_child(a, name, ids_file, blas_dir):
    return torch_env.run_child(__file__, ["--torch-child", name, "--ids-file", ids_file, "--threads", a.threads,
                                          "--steps", a.steps, "--warmup", a.warmup, "--batch", a.batch, "--seq",
                                          a.seq, "--vocab", a.vocab], blas_dir)


def mnemo_tokens_per_s(mnemo, cfg, vocab, B, T, steps, warmup, threads, ids_file, out):
    def run(n):
        cmd = [mnemo, "train", "lm", "--arch", "gpt2", "--n-layer", str(cfg["n_layer"]), "--d-model",
               str(cfg["n_embd"]), "--n-head", str(cfg["n_head"]), "--context", str(T), "--vocab", str(vocab),
               "--data", ids_file, "--steps", str(n), "--batch", str(B), "--seq", str(T), "--eval-every", "0",
               "--out", out, "-t", str(threads), "--quiet", "--json"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE)
        return time.perf_counter() - t0
    # Time (warmup + steps) minus (warmup) steps: start-up, first-touch allocation and saving cancel out.
    t_long, t_short = run(warmup + steps), run(warmup)
    return steps * B * T / (t_long - t_short)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", default="build/mnemo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peak-gflops", type=float, default=0)
    ap.add_argument("--torch-blas", default="auto",
                    help="directory with OpenBLAS's libblas.so.3 for PyTorch; 'system' = as installed")
    ap.add_argument("--torch-repeats", type=int, default=None,
                    help="PyTorch runs per size (default --repeats; 0 = mnemo only, for MFU). PyTorch 1.13 here is "
                         "an order of magnitude slower, so one run pins the ratio well enough")
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma-separated subset of " + ",".join(SIZES))
    ap.add_argument("--torch-child", help=argparse.SUPPRESS)
    ap.add_argument("--ids-file", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:  # one PyTorch measurement, in this process (started by torch_in_child)
        with open(a.ids_file) as f:
            ids = json.load(f)
        tps = torch_tokens_per_s(SIZES[a.torch_child], a.vocab, a.batch, a.seq, a.steps, a.warmup, a.threads, ids)
        import torch
        print(json.dumps({"tok_s": tps, "blas": torch_env.loaded_blas(), "torch": torch.__version__}))
        return 0
    blas_dir = torch_env.openblas_dir(a.torch_blas)
    print(json.dumps({"load_average_start": os.getloadavg()}), flush=True)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, a.vocab, size=200_000).tolist()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = os.path.join(tmp, "ids.json")
        with open(ids_file, "w") as f:
            json.dump(ids, f)
        torch_info = {}
        for name in a.sizes.split(","):
            cfg = SIZES[name]
            m, t = [], []
            n_torch = a.repeats if a.torch_repeats is None else a.torch_repeats
            for r in range(a.repeats):  # interleaved, so drifting machine load hits both alike
                m.append(mnemo_tokens_per_s(a.mnemo, cfg, a.vocab, a.batch, a.seq, a.steps, a.warmup, a.threads,
                                            ids_file, os.path.join(tmp, "out")))
                if r < n_torch:
                    torch_info = torch_in_child(a, name, ids_file, blas_dir)
                    t.append(torch_info["tok_s"])
            mm, tm = float(np.median(m)), float(np.median(t)) if t else float("nan")
            fpt = train_flops_per_token(cfg, a.vocab, a.seq)
            row = dict(model=name, batch=a.batch, seq=a.seq, vocab=a.vocab, threads=a.threads,
                       mnemo_tok_s=round(mm, 1), torch_tok_s=round(tm, 1), ratio=round(mm / tm, 2),
                       mnemo_runs=[round(x, 1) for x in m], torch_runs=[round(x, 1) for x in t])
            if a.peak_gflops:
                row["mnemo_mfu"] = round(mm * fpt / (a.peak_gflops * 1e9), 3)
                if t:
                    row["torch_mfu"] = round(tm * fpt / (a.peak_gflops * 1e9), 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"torch": torch_info.get("torch"), "torch_blas": torch_info.get("blas"), "threads": a.threads,
                      "load_average_end": os.getloadavg()}))


if __name__ == "__main__":
    sys.exit(main())

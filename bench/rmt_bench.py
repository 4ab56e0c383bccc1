#!/usr/bin/env python3
"""RMT speed: mnemo vs PyTorch on the same RMT (MiniLM-L6-H384 backbone, 64 text + 10 memory tokens a segment),
the same shapes and the same cores, in one run.

  inference   64 segments, batch 1, streaming (memory carried, no gradients)
  train step  4 segments, batch 8, full BPTT, AdamW update

mnemo: build/bench_rmt (Google Benchmark, repetitions, median). PyTorch: the RMT written here on
transformers' BertForSequenceClassification (as tests/oracle/test_rmt.py checks it against mnemo), eval mode (no
dropout) in both; torch.set_num_threads(--threads). Prints medians and the ratio PyTorch time / mnemo time.

Usage: .venv/bin/python bench/rmt_bench.py [--build build] [--threads 2] [--reps 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_env  # noqa: E402

M, L = 10, 64


def torch_times(model_dir, threads, reps):
    import torch
    import transformers

    torch.set_num_threads(threads)
    model = transformers.BertForSequenceClassification.from_pretrained(model_dir, num_labels=6)
    model.eval()
    g = torch.Generator().manual_seed(0)
    T = L + M + 3
    memory0 = torch.nn.Parameter(torch.randn(M, model.config.hidden_size) * 0.05)

    def segment(mem, text):
        B = text.shape[0]
        ids = torch.zeros((B, T), dtype=torch.long)
        ids[:, 0] = 101
        ids[:, M + 1] = 102
        ids[:, M + 2:M + 2 + L] = text
        ids[:, T - 1] = 102
        emb = model.bert.embeddings.word_embeddings(ids)
        emb = torch.cat([emb[:, :1], mem, emb[:, M + 1:]], dim=1)
        out = model.bert(inputs_embeds=emb, attention_mask=torch.ones((B, T), dtype=torch.long))
        return out.last_hidden_state

    def inference(S=64, B=1):
        text = torch.randint(1000, 21000, (S, B, L), generator=g)
        with torch.no_grad():
            mem = memory0.unsqueeze(0).expand(B, M, -1)
            for s in range(S):
                h = segment(mem, text[s])
                mem = h[:, 1:M + 1]
            return model.classifier(model.bert.pooler(h))

    opt = torch.optim.AdamW(list(model.parameters()) + [memory0], lr=1e-5, weight_decay=0.0)

    def train_step(S=4, B=8):
        text = torch.randint(1000, 21000, (S, B, L), generator=g)
        labels = torch.randint(0, 6, (B,), generator=g)
        mem = memory0.unsqueeze(0).expand(B, M, -1)
        for s in range(S):
            h = segment(mem, text[s])
            mem = h[:, 1:M + 1]
        loss = torch.nn.functional.cross_entropy(model.classifier(model.bert.pooler(h)), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    out = {}
    for name, fn in (("inference64", inference), ("train_step4", train_step)):
        fn()  # warm-up
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        out[name] = statistics.median(ts) * 1000.0
    return out


def mnemo_times(build, threads, reps):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    r = subprocess.run([os.path.join(build, "bench", "bench_rmt"), f"--benchmark_repetitions={reps}",
                        "--benchmark_format=json", "--benchmark_report_aggregates_only=true"],
                       env=env, check=True, capture_output=True, text=True)
    out = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            key = "inference64" if "Inference64" in b["run_name"] else "train_step4"
            out[key] = b["real_time"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--model", default="data/models/minilm-l6-h384")
    ap.add_argument("--torch-blas", default="auto", help="torch's BLAS: auto (OpenBLAS), system or DIR")
    a = ap.parse_args()
    torch_env.reexec_with_openblas(a.torch_blas)  # before torch is imported
    os.environ.pop("OPENBLAS_CORETYPE", None)  # PyTorch's best setting here (../shared/RMT-NOTES.md)
    mn = mnemo_times(a.build, a.threads, a.reps)
    pt = torch_times(a.model, a.threads, a.reps)
    import torch
    print(f"threads {a.threads}, torch {torch.__version__}, medians of {a.reps}")
    print(f"{'case':<14}{'mnemo ms':>10}{'torch ms':>10}{'torch/mnemo':>13}")
    rows = {}
    for k in ("inference64", "train_step4"):
        rows[k] = {"mnemo_ms": mn[k], "torch_ms": pt[k], "speedup": pt[k] / mn[k]}
        print(f"{k:<14}{mn[k]:>10.1f}{pt[k]:>10.1f}{pt[k] / mn[k]:>13.2f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

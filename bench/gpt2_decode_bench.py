#!/usr/bin/env python3
"""GPT-2 decoding speed: `mnemo generate` vs Hugging Face `generate` (use_cache=True, greedy) on the same model,
prompt, threads and cores, in one run, as a ratio of medians.

The model is GPT-2 small's shape (12 layers, d=768, 12 heads, 50,257 tokens, 1,024 positions; 124 M parameters)
with random weights (transformers' own init, seed 0), written once by transformers as an HF directory
(config.json + model.safetensors) that both engines load. Prompts: --prompts token counts of random ids; each
engine produces --new tokens after the prompt (end-of-text ignored).

- mnemo: `mnemo generate --model DIR --ids FILE --max-tokens N --ignore-eos --json`; its decode_tokens_per_second
  times the one-token steps only (the prompt runs first, as a batch, and is reported apart).
- PyTorch: GPT2LMHeadModel in eval mode under torch.no_grad(), torch.set_num_threads(threads), greedy with
  use_cache=True: the loop generate(do_sample=False) runs, written out because generate() itself fails on import
  with torch 1.13 under Python 3.11 (its torch.distributed module); decode time = time(N new tokens) - time(1)
  (the second call is the prompt pass plus the first token), over N - 1 steps. PyTorch runs in a child process,
  twice per repetition: on the system BLAS (Debian's torch calls the Netlib reference libblas) and with OpenBLAS's
  libblas.so.3 first on LD_LIBRARY_PATH (see bench/torch_env.py); the faster of the two medians is the
  reference. (One-row products are where OpenBLAS's threading can lose to the plain reference loops.)
Both engines' greedy tokens are compared (same weights, same prompt: they should agree; a tie between two logits
within float rounding can make them part ways, which is reported, not hidden).

usage: .venv/bin/python bench/gpt2_decode_bench.py --mnemo build/mnemo [--threads 2] [--reps 3] [--new 65]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import torch_env


def make_model(path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024)
    GPT2LMHeadModel(cfg).save_pretrained(path, safe_serialization=True)


def torch_child(a):
    import torch
    from transformers import GPT2LMHeadModel

    torch.set_num_threads(a.threads)
    model = GPT2LMHeadModel.from_pretrained(a.model_dir).eval()
    with open(a.ids_file) as f:
        ids = torch.tensor([json.load(f)])

    def gen(n):  # generate()'s greedy loop with use_cache, written out (see the module comment)
        t = time.perf_counter()
        toks = []
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=True)
            for i in range(n):
                nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)  # (1, 1)
                toks.append(int(nxt))
                if i + 1 < n:
                    out = model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
        return time.perf_counter() - t, toks

    gen(2)  # warm-up
    t_full, toks = gen(a.new)
    t_one, _ = gen(1)
    print(json.dumps({"decode_tok_s": (a.new - 1) / (t_full - t_one), "tokens": toks, "torch": torch.__version__,
                      "blas": torch_env.loaded_blas()}))


def run_torch(a, model_dir, ids_file, blas_dir):
    return torch_env.run_child(__file__, ["--torch-child", "--model-dir", model_dir, "--ids-file", ids_file,
                                          "--threads", a.threads, "--new", a.new], blas_dir)


def run_mnemo(a, model_dir, ids_file):
    cmd = [a.mnemo, "generate", "-t", str(a.threads), "--model", model_dir, "--ids", ids_file, "--max-tokens",
           str(a.new), "--ignore-eos", "--json"]
    d = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", default="build/mnemo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--new", type=int, default=65)
    ap.add_argument("--prompts", default="16,512")
    ap.add_argument("--torch-blas", default="auto")
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--ids-file", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:
        return torch_child(a)
    blas_dir = torch_env.openblas_dir(a.torch_blas)
    print(json.dumps({"load_average_start": os.getloadavg()}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "gpt2")
        make_model(model_dir)
        info = {}
        for P in [int(x) for x in a.prompts.split(",")]:
            ids = np.random.default_rng(P).integers(0, 50256, size=P).tolist()
            ids_file = os.path.join(tmp, f"ids{P}.json")
            with open(ids_file, "w") as f:
                json.dump(ids, f)
            m, agree = [], None
            t = {"system": [], "openblas": []}
            for _ in range(a.reps):  # interleaved
                d = run_mnemo(a, model_dir, ids_file)
                m.append(d["decode_tokens_per_second"])
                for key, bd in [("system", None), ("openblas", blas_dir)]:
                    if key == "openblas" and not blas_dir:
                        continue
                    info = run_torch(a, model_dir, ids_file, bd)
                    t[key].append(info["decode_tok_s"])
                    mt, tt = d["ids"], info["tokens"]
                    agree = next((i for i, (x, y) in enumerate(zip(mt, tt)) if x != y), min(len(mt), len(tt)))
            med = {k: statistics.median(v) for k, v in t.items() if v}
            best = max(med, key=med.get)
            mm, tm = statistics.median(m), med[best]
            print(json.dumps({"prompt": P, "new": a.new, "threads": a.threads, "mnemo_decode_tok_s": round(mm, 1),
                              "torch_decode_tok_s": round(tm, 2), "torch_blas": best, "ratio": round(mm / tm, 2),
                              "mnemo_runs": [round(x, 1) for x in m],
                              "torch_runs": {k: [round(x, 2) for x in v] for k, v in t.items()},
                              "greedy_tokens_agree": agree}), flush=True)
    print(json.dumps({"torch": info.get("torch"), "torch_blas": info.get("blas"), "load_average_end": os.getloadavg()}))


if __name__ == "__main__":
    sys.exit(main())

"""Decode and prefill speed of SmolLM2-135M-Instruct.Q4_1.gguf: mnemo vs llama.cpp (llama-cpp-python, same file,
same threads) vs transformers on fp32 weights, in one run, as ratios of medians; plus mnemo's peak memory.

    .venv/bin/python bench/llama_bench.py --mnemo build/mnemo [--threads 2] [--reps 3] [--json out.json]

- decode: tokens/s of one-token steps after a prompt of 128 and of 2,048 tokens (full cache), greedy, 64 steps;
- prefill: tokens/s of the 128- and 2,048-token prompts;
- transformers: LlamaForCausalLM from the same GGUF (dequantized to fp32), torch.set_num_threads(threads),
  prefill = one forward of the prompt, decode = one-token forwards with past_key_values;
- memory: mnemo's peak resident set while decoding after the 2,048-token prompt, against the file size plus the
  KV cache (30 layers x 3 kv heads x 64 x 2 x 4 bytes per token).
Runs of the three engines alternate within each repetition, so a busy machine slows them alike.
llama-cpp-python is a benchmark-time install (it compiles llama.cpp for a long time on 2 cores; see docs/llama.md).
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import torch_env

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
GGUF = os.path.join(ROOT, "data", "models", "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")
STEPS = 64


def prompt(n, seed):
    rng = random.Random(seed)
    return [rng.randrange(17, 49152) for _ in range(n)]  # ordinary (non-control) tokens


def run_mnemo(exe, ids, threads):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(ids, f)
    try:
        r = subprocess.run(["/usr/bin/time", "-f", "%M", exe, "generate", "-t", str(threads), "--model", GGUF, "--ids",
                            f.name, "--max-tokens", str(STEPS + 1), "--ignore-eos", "--json"], capture_output=True,
                           text=True, check=True)
    finally:
        os.unlink(f.name)
    d = json.loads(r.stdout)
    return d["prefill_tokens_per_second"], d["decode_tokens_per_second"], int(r.stderr.strip().splitlines()[-1]) * 1024


def make_llamacpp(threads, n_ctx):
    # llama.cpp runs with libgomp's default wait (spin briefly, then sleep): its fastest on a quiet machine
    # (docs/llama.md). On a heavily shared machine run with OMP_WAIT_POLICY=PASSIVE, or its spinning workers
    # collapse it to a fraction of a token per second.
    from llama_cpp import Llama

    return Llama(model_path=GGUF, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=512,
                 logits_all=False, verbose=False)


def run_llamacpp(llm, ids):
    import numpy as np

    llm.reset()
    t = time.perf_counter()
    llm.eval(ids)
    prefill = len(ids) / (time.perf_counter() - t)
    tok = int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))))
    t = time.perf_counter()
    for _ in range(STEPS):
        llm.eval([tok])
        tok = int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))))
    return prefill, STEPS / (time.perf_counter() - t)


def run_hf(model, ids):
    import torch

    with torch.no_grad():
        x = torch.tensor([ids])
        t = time.perf_counter()
        out = model(x, use_cache=True)
        prefill = len(ids) / (time.perf_counter() - t)
        past, tok = out.past_key_values, out.logits[0, -1].argmax().view(1, 1)
        t = time.perf_counter()
        for _ in range(STEPS):
            out = model(tok, past_key_values=past, use_cache=True)
            past, tok = out.past_key_values, out.logits[0, -1].argmax().view(1, 1)
        return prefill, STEPS / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", default=os.path.join(ROOT, "build", "mnemo"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--contexts", default="128,2048")
    ap.add_argument("--no-hf", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--torch-blas", default="auto", help="torch's BLAS: auto (OpenBLAS), system or DIR")
    a = ap.parse_args()
    torch_env.reexec_with_openblas(a.torch_blas)  # before torch is imported
    contexts = [int(c) for c in a.contexts.split(",")]
    try:
        llms = {c: make_llamacpp(a.threads, c + STEPS + 8) for c in contexts}
    except ImportError:
        sys.exit("llama-cpp-python is not installed: pip install llama-cpp-python (see docs/llama.md)")
    hf = None if a.no_hf else torch_env.hf_llama_from_gguf(GGUF, a.threads)
    res = {c: {"mnemo": [], "llama.cpp": [], "transformers": [], "rss": []} for c in contexts}
    for rep in range(a.reps):
        for c in contexts:
            ids = prompt(c, c)
            p, d, rss = run_mnemo(a.mnemo, ids, a.threads)
            res[c]["mnemo"].append((p, d))
            res[c]["rss"].append(rss)
            res[c]["llama.cpp"].append(run_llamacpp(llms[c], ids))
            if hf is not None:
                res[c]["transformers"].append(run_hf(hf, ids))
            print(f"rep {rep} ctx {c}: " + ", ".join(f"{k} prefill {v[-1][0]:.0f} decode {v[-1][1]:.1f}"
                                                     for k, v in res[c].items() if k != "rss" and v),
                  file=sys.stderr)
    kv_bytes_per_token = 30 * 3 * 64 * 2 * 4
    out = {"threads": a.threads, "reps": a.reps, "steps": STEPS, "file_bytes": os.path.getsize(GGUF), "contexts": {}}
    for c in contexts:
        row = {}
        for eng in ("mnemo", "llama.cpp", "transformers"):
            if res[c][eng]:
                row[eng] = {"prefill_tps": statistics.median(p for p, _ in res[c][eng]),
                            "decode_tps": statistics.median(d for _, d in res[c][eng])}
        for eng in ("llama.cpp", "transformers"):
            if eng in row:
                row[f"decode_ratio_vs_{eng}"] = row["mnemo"]["decode_tps"] / row[eng]["decode_tps"]
                row[f"prefill_ratio_vs_{eng}"] = row["mnemo"]["prefill_tps"] / row[eng]["prefill_tps"]
        row["mnemo_peak_rss_bytes"] = max(res[c]["rss"])
        row["file_plus_kv_bytes"] = os.path.getsize(GGUF) + (c + STEPS + 1) * kv_bytes_per_token
        out["contexts"][str(c)] = row
    print(json.dumps(out, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

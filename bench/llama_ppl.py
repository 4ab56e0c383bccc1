"""Perplexity of held-out text (the Moby-Dick chapters of data/corpus/test.jsonl, concatenated) under
SmolLM2-135M-Instruct.Q4_1.gguf, computed by mnemo, by transformers (same GGUF dequantized to fp32) and by llama.cpp
(llama-cpp-python, when installed), on the same token ids and the same windows: the ids are cut into windows of
--ctx tokens, each scored from an empty cache, every token after a window's first predicted.

    .venv/bin/python bench/llama_ppl.py --mnemo build/mnemo [--tokens 4096] [--ctx 1024] [--json out.json]
"""
import argparse
import json
import math
import os
import subprocess
import tempfile
import time

import torch_env

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
GGUF = os.path.join(ROOT, "data", "models", "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")


def held_out_text():
    parts = []
    with open(os.path.join(ROOT, "data", "corpus", "test.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            if d["source"] == "moby-dick":
                parts.append(d["text"])
    return "\n\n".join(parts)


def nll_of(logits, ids):
    import torch

    lp = torch.log_softmax(torch.as_tensor(logits).double(), -1)
    tgt = torch.as_tensor(ids[1:])
    return -lp[torch.arange(len(ids) - 1), tgt].sum().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", default=os.path.join(ROOT, "build", "mnemo"))
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--torch-blas", default="auto", help="torch's BLAS: auto (OpenBLAS), system or DIR")
    a = ap.parse_args()
    torch_env.reexec_with_openblas(a.torch_blas)  # before torch is imported

    with tempfile.TemporaryDirectory() as tmp:
        text_file = os.path.join(tmp, "heldout.txt")
        with open(text_file, "w") as f:
            f.write(held_out_text())
        r = subprocess.run([a.mnemo, "tokenize", "--tokenizer", GGUF, "--text", text_file], capture_output=True,
                           text=True, check=True)
        ids = [int(x) for x in r.stdout.split()][: a.tokens]
        ids_file = os.path.join(tmp, "ids.json")
        with open(ids_file, "w") as f:
            json.dump(ids, f)
        t = time.perf_counter()
        r = subprocess.run([a.mnemo, "perplexity", "-t", str(a.threads), "--model", GGUF, "--ids", ids_file,
                            "--ctx", str(a.ctx), "--json"], capture_output=True, text=True, check=True)
        mn = json.loads(r.stdout)
        mn["wall_seconds"] = time.perf_counter() - t
    windows = [ids[i:i + a.ctx] for i in range(0, len(ids), a.ctx)]
    windows = [w for w in windows if len(w) > 1]
    scored = sum(len(w) - 1 for w in windows)
    out = {"tokens": scored, "ctx": a.ctx, "mnemo": {"nll": mn["nll"], "ppl": mn["ppl"], "seconds": mn["seconds"]}}

    hf = torch_env.hf_llama_from_gguf(GGUF, a.threads)
    import torch
    t = time.perf_counter()
    with torch.no_grad():
        nll = sum(nll_of(hf(torch.tensor([w])).logits[0], w) for w in windows)
    out["transformers"] = {"nll": nll, "ppl": math.exp(nll / scored), "seconds": time.perf_counter() - t}

    try:
        from llama_cpp import Llama
    except ImportError:
        Llama = None
    if Llama is not None:
        import numpy as np

        llm = Llama(model_path=GGUF, n_ctx=a.ctx, n_batch=512, n_threads=a.threads, logits_all=True, verbose=False)
        t = time.perf_counter()
        nll = 0.0
        for w in windows:
            llm.reset()
            llm.eval(w)
            nll += nll_of(np.array(llm.scores[: len(w)]), w)
        out["llama.cpp"] = {"nll": nll, "ppl": math.exp(nll / scored), "seconds": time.perf_counter() - t}
    for ref in ("transformers", "llama.cpp"):
        if ref in out:
            out[f"ppl_rel_diff_vs_{ref}"] = out["mnemo"]["ppl"] / out[ref]["ppl"] - 1
    print(json.dumps(out, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

"""MiniLM-L6-H384 inference speed: mnemo vs Hugging Face transformers on the same cores.

Sequences are windows of exactly L tokens ([CLS] + L-2 WordPiece tokens of Moby-Dick + [SEP]), L = 128 and 512.
mnemo runs `mnemo embed --pool mean` (the reported "seconds" covers the forward passes and pooling, not model
loading); transformers runs BertModel in eval mode under torch.no_grad() with torch.set_num_threads(threads),
both with its default (eager) path and with its oneDNN path (torch.utils.mkldnn.to_mkldnn), since Debian's torch
multiplies dense matrices with a generic BLAS. Each figure is the median of --reps timed runs after one warm-up.

usage: .venv/bin/python bench/minilm_bench.py --mnemo build/mnemo [--threads 2] [--reps 3] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_env  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))


def windows(tok, length, count):
    import models_oracle

    text = " ".join(models_oracle.moby_dick_sentences(ROOT, 4000))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    body = length - 2
    out = []
    for i in range(count):
        chunk = ids[i * body:(i + 1) * body]
        assert len(chunk) == body, "not enough text"
        out.append([tok.cls_token_id] + chunk + [tok.sep_token_id])
    return out


def time_mnemo(exe, model_dir, seqs, batch, threads, reps):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ids.json")
        with open(path, "w") as f:
            json.dump(seqs, f)
        cmd = [exe, "embed", "-t", str(threads), "--model", model_dir, "--ids", path, "--pool", "mean", "--batch",
               str(batch), "--json"]
        times = []
        for r in range(reps + 1):
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            if r:
                times.append(json.loads(out)["seconds"])
        return statistics.median(times)


def time_torch(model, seqs, batch, reps):
    import torch

    def run():
        t = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(seqs), batch):
                ids = torch.tensor(seqs[i:i + batch])
                h = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
                h.mean(1)
        return time.perf_counter() - t

    run()
    return statistics.median(run() for _ in range(reps))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", required=True)
    ap.add_argument("--model", default=os.path.join(ROOT, "data", "models", "minilm-l6-h384"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--torch-blas", default="auto", help="torch's BLAS: auto (OpenBLAS), system or DIR")
    args = ap.parse_args()
    torch_env.reexec_with_openblas(args.torch_blas)  # before torch is imported

    import torch
    from torch.utils import mkldnn
    from transformers import AutoTokenizer, BertModel

    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    eager = BertModel.from_pretrained(args.model).eval()
    onednn = mkldnn.to_mkldnn(BertModel.from_pretrained(args.model).eval())
    results = []
    for length, count, batch in [(128, 32, 8), (512, 8, 4)]:
        seqs = windows(tok, length, count)
        t_m = time_mnemo(args.mnemo, args.model, seqs, batch, args.threads, args.reps)
        t_e = time_torch(eager, seqs, batch, args.reps)
        t_o = time_torch(onednn, seqs, batch, args.reps)
        row = {"tokens": length, "sequences": count, "batch": batch, "threads": args.threads,
               "mnemo_seq_per_s": count / t_m, "transformers_eager_seq_per_s": count / t_e,
               "transformers_onednn_seq_per_s": count / t_o, "speedup_vs_eager": t_e / t_m,
               "speedup_vs_onednn": t_o / t_m}
        results.append(row)
        if not args.json:
            print(f"L={length:4d}: mnemo {row['mnemo_seq_per_s']:8.2f} seq/s | transformers eager "
                  f"{row['transformers_eager_seq_per_s']:8.2f} ({row['speedup_vs_eager']:.2f}x) | transformers "
                  f"oneDNN {row['transformers_onednn_seq_per_s']:8.2f} ({row['speedup_vs_onednn']:.2f}x)",
                  flush=True)
    if args.json:
        print(json.dumps({"bench": "minilm", "results": results}))


if __name__ == "__main__":
    main()

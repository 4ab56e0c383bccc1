"""MiniLM-L6-H384 inference speed: mnemo vs Hugging Face transformers on the same cores.

Sequences are windows of exactly L tokens ([CLS] + L-2 WordPiece tokens of Moby-Dick + [SEP]), L = 128 and 512.
mnemo runs `mnemo embed --pool mean` (the reported "seconds" covers the forward passes and pooling, not model
loading), in fp32 and with `--precision bf16`; transformers runs BertModel in eval mode under torch.no_grad() with
torch.set_num_threads(threads): fp32 with its default (eager) path and with its oneDNN path
(torch.utils.mkldnn.to_mkldnn), since Debian's torch multiplies dense matrices with a generic BLAS, and bf16
(model.to(torch.bfloat16), whose products go through oneDNN's bf16 kernels). Speedups: mnemo fp32 against the
faster fp32 path; mnemo bf16 against the faster fp32 path and against transformers in bf16. Each figure is the
median of --reps timed runs after one warm-up.

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


def time_mnemo(exe, model_dir, seqs, batch, threads, reps, precision):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ids.json")
        with open(path, "w") as f:
            json.dump(seqs, f)
        cmd = [exe, "embed", "-t", str(threads), "--model", model_dir, "--ids", path, "--pool", "mean", "--batch",
               str(batch), "--precision", precision, "--json"]
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
    half = BertModel.from_pretrained(args.model).eval().to(torch.bfloat16)
    results = []
    # Enough sequences that mnemo's one-time costs in each fresh process (first calls of each kernel shape, the
    # arena's first page faults: ~15 % of a 32-sequence run) weigh little; transformers gets an untimed warm-up run.
    for length, count, batch in [(128, 128, 8), (512, 16, 4)]:
        seqs = windows(tok, length, count)
        t = {"mnemo_fp32": time_mnemo(args.mnemo, args.model, seqs, batch, args.threads, args.reps, "fp32"),
             "mnemo_bf16": time_mnemo(args.mnemo, args.model, seqs, batch, args.threads, args.reps, "bf16"),
             "transformers_eager": time_torch(eager, seqs, batch, args.reps),
             "transformers_onednn": time_torch(onednn, seqs, batch, args.reps),
             "transformers_bf16": time_torch(half, seqs, batch, args.reps)}
        best_fp32 = min(t["transformers_eager"], t["transformers_onednn"])
        row = {"tokens": length, "sequences": count, "batch": batch, "threads": args.threads}
        row.update({k + "_seq_per_s": count / v for k, v in t.items()})
        row.update({"speedup_fp32": best_fp32 / t["mnemo_fp32"], "speedup_bf16_vs_fp32": best_fp32 / t["mnemo_bf16"],
                    "speedup_bf16_vs_bf16": t["transformers_bf16"] / t["mnemo_bf16"]})
        results.append(row)
        if not args.json:
            r = {k: row[k + "_seq_per_s"] for k in t}
            print(f"L={length:4d} seq/s: mnemo fp32 {r['mnemo_fp32']:.2f}, bf16 {r['mnemo_bf16']:.2f} | transformers "
                  f"eager {r['transformers_eager']:.2f}, oneDNN {r['transformers_onednn']:.2f}, bf16 "
                  f"{r['transformers_bf16']:.2f} | fp32 {row['speedup_fp32']:.2f}x, bf16 vs fp32 "
                  f"{row['speedup_bf16_vs_fp32']:.2f}x, bf16 vs bf16 {row['speedup_bf16_vs_bf16']:.2f}x", flush=True)
    if args.json:
        print(json.dumps({"bench": "minilm", "results": results}))


if __name__ == "__main__":
    main()

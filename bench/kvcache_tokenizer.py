#!/usr/bin/env python3
"""Write SmolLM2's tokenizer.json (HF `tokenizers`) from the GGUF file's own metadata, for the KV-cache benchmarks
while mnemo reads tokenizers from tokenizer.json files (and so that kvpress/transformers tokenize identically).

The GGUF holds llama.cpp's "gpt2" BPE (tokens, merges, token types) with the "smollm" pre-tokenizer: every digit
alone, then GPT-2's byte-level split. Control tokens (<|im_start|>, <|im_end|>, ...) become special added tokens.

usage: .venv/bin/python bench/kvcache_tokenizer.py MODEL.gguf OUT_DIR
"""
import sys
import types
from pathlib import Path


def main(gguf_path: str, out_dir: str) -> None:
    try:
        import sentencepiece  # noqa: F401  (gguf's package imports it for its writer only)
    except ImportError:
        sys.modules["sentencepiece"] = types.SimpleNamespace(SentencePieceProcessor=None)
    import gguf
    import tokenizers as tk

    fields = gguf.GGUFReader(gguf_path).fields

    def strings(key):
        return [bytes(fields[key].parts[i]).decode("utf-8") for i in fields[key].data]

    assert strings("tokenizer.ggml.model") == ["gpt2"], "not a gpt2-style BPE vocabulary"
    assert strings("tokenizer.ggml.pre") == ["smollm"], "not SmolLM2's pre-tokenizer"
    tokens = strings("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ")) for m in strings("tokenizer.ggml.merges")]
    kinds = [int(fields["tokenizer.ggml.token_type"].parts[i][0]) for i in fields["tokenizer.ggml.token_type"].data]
    t = tk.Tokenizer(tk.models.BPE(vocab={s: i for i, s in enumerate(tokens)}, merges=merges))
    t.pre_tokenizer = tk.pre_tokenizers.Sequence([tk.pre_tokenizers.Digits(individual_digits=True),
                                                  tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    t.decoder = tk.decoders.ByteLevel()
    t.add_special_tokens([tk.AddedToken(s, special=True, normalized=False)
                          for s, kind in zip(tokens, kinds) if kind == 3])  # 3 = CONTROL
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t.save(str(out / "tokenizer.json"))
    print(out / "tokenizer.json")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

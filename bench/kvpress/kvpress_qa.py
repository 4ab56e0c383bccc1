#!/usr/bin/env python3
"""The peer: NVIDIA kvpress on the same model and task file as `mnemo eval qa`, at the same budgets.

Runs in the benchmark-only venv (bench/kvpress/setup_venv.sh --install), not the test venv.
Model: transformers loading the same GGUF file (dequantized to fp32). Tokenizer: the tokenizer.json that
bench/kvcache_tokenizer.py writes from the GGUF, with SmolLM2's chat template, so prompts tokenize as mnemo's do.
Protocol (kvpress's pipeline): chat template around the context, the context prefilled and compressed once by the
press to `budget` entries per layer and head, the question ("\\n" + question) and a greedy answer (16 tokens)
appended without compression, positions absolute. Presses: StreamingLLMPress (4 sinks), TOVAPress,
ObservedAttentionPress (kvpress's H2O-like press: mean attention over the queries that could see each key, no
recent window). Correct = the target occurs in the answer (case-folded), as in mnemo eval qa.

usage: .venv-kvpress/bin/python bench/kvpress/kvpress_qa.py MODEL.gguf TOKENIZER.json TASK.jsonl
         --budgets 128 [256 ...] [--presses full streaming tova observed] [--limit N] [--threads 2] > OUT.jsonl
One JSON object per (press, budget) on stdout.
"""
import argparse
import json
import os
import time
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def load_peer(model_path: str, tokenizer_path: str):
    """The peer's tokenizer (the GGUF's tokenizer.json with SmolLM2's chat template) and transformers' model loading
    the same GGUF, dequantized to fp32 (or the same HF directory). Eager attention: ObservedAttentionPress needs the attention weights (and it
    makes every press comparable)."""
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=tokenizer_path, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  unk_token="<|endoftext|>", pad_token="<|im_end|>")
    tok.chat_template = CHAT_TEMPLATE
    path = Path(model_path)
    if path.is_dir():  # an HF directory (e.g. `mnemo train qa`'s fine-tuned model)
        model = AutoModelForCausalLM.from_pretrained(str(path), torch_dtype=torch.float32, attn_implementation="eager")
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, torch_dtype=torch.float32,
                                                     attn_implementation="eager")
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<|im_end|>"), 0]
    return tok, model


def make_press(name: str, budget: int = 0, n_tokens: int = 0):
    """kvpress's press by the names --presses takes; with a budget, the compression ratio that keeps `budget` of
    `n_tokens` entries."""
    from kvpress import ObservedAttentionPress, StreamingLLMPress, TOVAPress

    # n_kept = int(k_len * (1 - ratio)): aim half a token above the budget so float rounding keeps it.
    ratio = 1.0 - (budget + 0.5) / n_tokens if budget else 0.0
    return {"streaming": lambda r: StreamingLLMPress(compression_ratio=r, n_sink=4),
            "tova": lambda r: TOVAPress(compression_ratio=r),
            "observed": lambda r: ObservedAttentionPress(compression_ratio=r)}[name](ratio)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("tokenizer")
    ap.add_argument("data")
    ap.add_argument("--budgets", type=int, nargs="+", required=True)
    ap.add_argument("--presses", nargs="+", default=["full", "streaming", "tova", "observed"])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-new", type=int, default=16)
    a = ap.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    import transformers
    from transformers import pipeline
    import kvpress

    t0 = time.time()
    tok, model = load_peer(a.model, a.tokenizer)
    load_s = time.time() - t0
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tok, device="cpu")
    records = [json.loads(line) for line in open(a.data, encoding="utf-8") if line.strip()]
    if a.limit:
        records = records[: a.limit]
    # Context length in tokens as the pipeline builds it, to turn a budget into kvpress's compression ratio.
    def context_tokens(rec):
        sep = "#" * (len(rec["input"]) + 10)
        text = tok.apply_chat_template([{"role": "user", "content": rec["input"] + sep}], add_generation_prompt=True,
                                       tokenize=False).split(sep)[0]
        return len(tok.encode(text, add_special_tokens=False))

    version = getattr(kvpress, "__version__", None)
    if version is None:
        from importlib.metadata import version as v
        version = v("kvpress")
    runs = [("full", None)] if "full" in a.presses else []
    runs += [(p, b) for b in a.budgets for p in a.presses if p != "full"]
    for press_name, budget in runs:
        correct, secs, answers = 0, 0.0, []
        for rec in records:
            press = None if press_name == "full" else make_press(press_name, budget, context_tokens(rec))
            t = time.time()
            out = pipe(rec["input"], question="\n" + rec["question"], press=press, max_new_tokens=a.max_new)["answer"]
            secs += time.time() - t
            ok = rec["target"].lower() in out.lower()
            correct += ok
            answers.append({"target": rec["target"], "answer": out, "correct": ok})
        print(json.dumps({"data": a.data, "press": press_name, "budget": budget, "records": len(records),
                          "correct": correct, "accuracy": correct / len(records), "seconds": secs,
                          "seconds_per_record": secs / len(records), "threads": a.threads, "load_seconds": load_s,
                          "kvpress": version, "torch": torch.__version__, "transformers": transformers.__version__,
                          "answers": answers}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Decode speed per policy beside the peer (issue target: >= 3x kvpress/transformers on the same cores).

One prompt (a task record's context in the chat template, ~1,000 tokens), reduced to `budget` entries per layer
and head, then `new` greedy tokens with the policy evicting at every step:
- mnemo: `mnemo generate --ids FILE --memory P --budget B --max-tokens N --ignore-eos --json`, its
  decode_tokens_per_second (the prefill is timed apart);
- kvpress: PrefillDecodingPress(prefilling_press=P at the budget, decoding_press=DecodingPress(P,
  compression_interval=1, target_size=B)) on transformers loading the same GGUF (fp32, eager attention), the
  decode loop timed alone: the same policy evicting every step, as mnemo's does. Full: no press.
The engines alternate within each round (a busy machine slows both alike); medians over rounds.

usage: .venv-kvpress/bin/python bench/kvpress/kvpress_decode.py --mnemo build/mnemo MODEL.gguf TOKENIZER.json
         TASK.jsonl [--budget 128] [--threads 2] [--new 64] [--rounds 3]
Needs .venv-kvpress (bench/kvpress/setup_venv.sh --install). Prints one row per policy and a JSON summary.
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time

from kvpress_qa import load_peer, make_press

PAIRS = [("full", None), ("sink", "streaming"), ("tova", "tova"), ("h2o", "observed")]  # mnemo policy, press


def mnemo_decode(a, ids_file, policy):
    cmd = [a.mnemo, "generate", "-t", str(a.threads), "--model", a.model, "--ids", ids_file, "--max-tokens",
           str(a.new + 1), "--ignore-eos", "--json", "--memory", policy]
    if policy != "full":
        cmd += ["--budget", str(a.budget)]
    d = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return d["decode_tokens_per_second"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemo", default="build/mnemo")
    ap.add_argument("model")
    ap.add_argument("tokenizer")
    ap.add_argument("data")
    ap.add_argument("--budget", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    import transformers
    transformers.utils.logging.disable_progress_bar()
    from transformers import DynamicCache
    from kvpress import DecodingPress, PrefillDecodingPress

    tok, model = load_peer(a.model, a.tokenizer)
    model.eval()
    rec = json.loads(next(line for line in open(a.data, encoding="utf-8") if line.strip()))
    text = tok.apply_chat_template([{"role": "user", "content": rec["input"]}], add_generation_prompt=True,
                                   tokenize=False)
    ids = tok.encode(text, add_special_tokens=False)

    def kvpress_decode(press_name):
        press = None
        if press_name:
            press = PrefillDecodingPress(prefilling_press=make_press(press_name, a.budget, len(ids)),
                                         decoding_press=DecodingPress(base_press=make_press(press_name),
                                                                      compression_interval=1, target_size=a.budget))
        cache = DynamicCache()
        x = torch.tensor([ids])
        with torch.no_grad(), (press(model) if press else contextlib.nullcontext()):
            out = model(input_ids=x, past_key_values=cache, use_cache=True)
            nxt = out.logits[:, -1:].argmax(-1)
            t = time.perf_counter()
            for _ in range(a.new):
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                nxt = out.logits[:, -1:].argmax(-1)
            secs = time.perf_counter() - t
        held = cache.get_seq_length()
        return a.new / secs, held

    ours = {p: [] for p, _ in PAIRS}
    theirs = {p: [] for p, _ in PAIRS}
    held = {}
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = os.path.join(tmp, "ids.json")
        with open(ids_file, "w") as f:
            json.dump(ids, f)
        kvpress_decode(None)  # warm-up
        for _ in range(a.rounds):
            for policy, press in PAIRS:
                ours[policy].append(mnemo_decode(a, ids_file, policy))
                tps, held[policy] = kvpress_decode(press)
                theirs[policy].append(tps)
    rows = []
    from importlib.metadata import version
    print(f"prompt {len(ids)} tokens, {a.new} new, threads {a.threads}, budget {a.budget}, kvpress "
          f"{version('kvpress')}, medians of {a.rounds} rounds")
    print("policy   mnemo tok/s  kvpress tok/s  kvpress cache at end  mnemo/kvpress")
    for policy, press in PAIRS:
        m, k = statistics.median(ours[policy]), statistics.median(theirs[policy])
        rows.append({"mnemo": policy, "kvpress": press or "none", "mnemo_decode_tok_s": round(m, 1),
                     "kvpress_decode_tok_s": round(k, 2), "kvpress_cache_entries": held[policy],
                     "ratio": round(m / k, 2)})
        print(f"{policy:8s} {m:11.1f}  {k:13.2f}  {held[policy]:20d}  {m / k:12.2f}x")
    print(json.dumps({"prompt_tokens": len(ids), "new": a.new, "threads": a.threads, "budget": a.budget,
                      "rounds": a.rounds, "kvpress": version("kvpress"), "torch": torch.__version__, "transformers": transformers.__version__,
                      "load_average": os.getloadavg(), "rows": rows}))


if __name__ == "__main__":
    main()

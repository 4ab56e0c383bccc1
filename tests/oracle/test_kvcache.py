"""KV-cache eviction policies against an independent implementation on Hugging Face transformers.

SmolLM2-135M-Instruct.Q4_1.gguf loaded by transformers (dequantized to fp32, eager attention so every layer's
attention probabilities are visible) decodes a real text token by token with a DynamicCache; after each step the
cache of every layer is cut to the budget by the policy as published, written here from the papers (not from
mnemo's code): sliding window; StreamingLLM (4 sinks + window); TOVA (the newest query's attention averaged over
all heads, keep the top `budget` — schwartz-lab-NLP/TOVA); H2O (attention accumulated per kv head, the group's
query heads averaged; half the budget for the most recent, half for the heaviest older entries —
FMInference/H2O). mnemo runs the same ids with `mnemo perplexity --memory P --budget K --save-logits`.

Tolerances: the weights are the same fp32 numbers; summation orders differ (mnemo's logits match transformers'
to ~2e-4 with the full cache, tests/oracle/test_llama.py). An eviction choice could flip only between two entries
whose scores agree to ~1e-6; on this text none does, and any flip would show as a logit gap far above 5e-3.
Also checked: a budget >= the sequence gives exactly the full cache's NLL.
"""
import json
import os
import re
import subprocess

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SMOLLM2_DIR = os.path.join(ROOT, "data", "models", "smollm2-135m")
SMOLLM2 = os.path.join(SMOLLM2_DIR, "SmolLM2-135M-Instruct.Q4_1.gguf")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")
from safetensors.numpy import load_file  # noqa: E402

TEXT = ("Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and "
        "nothing particular to interest me on shore, I thought I would sail about a little and see the watery part "
        "of the world. It is a way I have of driving off the spleen and regulating the circulation.")
BUDGET = 16


@pytest.fixture(scope="module")
def hf():
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} not set up (scripts/setup fetches it)")
    pytest.importorskip("accelerate")  # transformers needs it to load GGUF files
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = os.path.basename(SMOLLM2)
    model = AutoModelForCausalLM.from_pretrained(SMOLLM2_DIR, gguf_file=name, torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    model.lm_head.weight = model.model.embed_tokens.weight  # tied in the file (see test_llama.py)
    model.eval()
    ids = AutoTokenizer.from_pretrained(SMOLLM2_DIR, gguf_file=name)(TEXT)["input_ids"][:56]
    full = _hf_decode(model, ids, "window", 10**6)  # the full cache: nothing is ever over budget
    return model, ids, full


def _keep(policy, attn_last, acc, n, budget):
    """Kept indices (Hkv rows, ascending) for one layer. attn_last (H, n): the newest query's attention."""
    hkv = acc.shape[0] if acc is not None else 3
    if policy == "window":
        return [list(range(n - budget, n))] * hkv
    if policy == "sink":
        return [list(range(4)) + list(range(n - (budget - 4), n))] * hkv
    if policy == "tova":
        s = attn_last.mean(0)  # over all query heads
        order = sorted(range(n), key=lambda j: (-s[j].item(), -j))  # ties: the later entry stays
        return [sorted(order[:budget])] * hkv
    if policy == "h2o":
        recent = budget - budget // 2
        rows = []
        for g in range(hkv):
            older = n - recent
            order = sorted(range(older), key=lambda j: (-acc[g, j].item(), -j))
            rows.append(sorted(order[: budget - recent]) + list(range(older, n)))
        return rows
    raise ValueError(policy)


def _hf_decode(model, ids, policy, budget):
    """Logits (T, V) decoding token by token with the cache cut to `budget` by `policy` after every step."""
    from transformers import DynamicCache

    cache, logits, acc = DynamicCache(), [], None
    L, H, Hkv = model.config.num_hidden_layers, model.config.num_attention_heads, model.config.num_key_value_heads
    accs = [None] * L
    with torch.no_grad():
        for t, tok in enumerate(ids):
            out = model(torch.tensor([[tok]]), past_key_values=cache, position_ids=torch.tensor([[t]]),
                        output_attentions=True, use_cache=True)
            logits.append(out.logits[0, -1].numpy())
            cache = out.past_key_values
            for layer in range(L):
                a = out.attentions[layer][0, :, -1, :].double()  # (H, n)
                n = a.shape[1]
                pooled = a.view(Hkv, H // Hkv, n).mean(1)  # (Hkv, n): mean over each group's query heads
                acc = accs[layer]
                acc = pooled if acc is None else torch.cat([acc, torch.zeros(Hkv, n - acc.shape[1], dtype=acc.dtype)], 1) + pooled
                if n > budget:
                    rows = _keep(policy, a, acc, n, budget)
                    idx = torch.tensor(rows)  # (Hkv, budget)
                    k, v = cache.key_cache[layer], cache.value_cache[layer]  # (1, Hkv, n, hd)
                    gather = idx[None, :, :, None].expand(1, Hkv, budget, k.shape[-1])
                    cache.key_cache[layer] = torch.gather(k, 2, gather)
                    cache.value_cache[layer] = torch.gather(v, 2, gather)
                    acc = torch.gather(acc, 1, idx)
                accs[layer] = acc
    return np.stack(logits)


def _mnemo(tmp_path, ids, *memory):
    exe = os.environ.get("MNEMO_BIN")
    if not exe:
        pytest.skip("MNEMO_BIN not set (scripts/test sets it)")
    f = tmp_path / "ids.json"
    f.write_text(json.dumps(ids))
    out = tmp_path / "logits.safetensors"
    r = subprocess.run([exe, "perplexity", "--model", SMOLLM2, "--ids", str(f), "--json", "--batch", "1",
                        "--save-logits", str(out), *memory], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return load_file(str(out))["logits"], json.loads(r.stdout)


@pytest.mark.parametrize("policy", ["window", "sink", "tova", "h2o"])
def test_policy_matches_transformers(tmp_path, hf, policy):
    model, ids, full = hf
    assert len(ids) > 2 * BUDGET
    want = _hf_decode(model, ids, policy, BUDGET)
    got, res = _mnemo(tmp_path, ids, "--memory", policy, "--budget", str(BUDGET))
    assert got.shape == want.shape
    diff = np.abs(got - want).max()
    assert diff < 5e-3, f"{policy}: max logit difference {diff}"
    assert (got.argmax(-1) == want.argmax(-1)).mean() > 0.98
    # And the policy mattered: the full cache's logits differ well beyond the tolerance after the budget.
    assert np.abs(full[BUDGET + 8:] - want[BUDGET + 8:]).max() > 0.1


def test_budget_at_least_the_sequence_equals_full(tmp_path, hf):
    _, ids, _ = hf
    _, full = _mnemo(tmp_path, ids)
    for policy in ["tova", "h2o"]:
        _, res = _mnemo(tmp_path, ids, "--memory", policy, "--budget", str(len(ids)))
        assert res["nll"] == full["nll"], policy


@pytest.mark.parametrize("args,expect", [
    (["--memory", "tova", "--budget", "0"], "--budget 0"),
    (["--memory", "lru", "--budget", "8"], "unknown policy 'lru'"),
    (["--memory", "tova"], "needs --budget"),
    (["--memory", "sink", "--budget", "3"], "at least 5"),
    (["--memory", "full", "--budget", "8"], "takes no budget"),
])
def test_bad_memory_flags_give_one_line(tmp_path, args, expect):
    exe = os.environ.get("MNEMO_BIN")
    if not exe:
        pytest.skip("MNEMO_BIN not set (scripts/test sets it)")
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} not set up")
    f = tmp_path / "ids.json"
    f.write_text(json.dumps([1, 2, 3, 4]))
    r = subprocess.run([exe, "perplexity", "--model", SMOLLM2, "--ids", str(f), *args], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.stderr


def test_documents_decode_together(tmp_path, hf):
    """--docs: several documents (and their windows) decode as one batch, each on its own bounded cache; every
    document's NLL must equal decoding it alone (to fp32 summation order: one multi-vector product per step instead
    of a matvec per document), and the totals must be their sums."""
    _, ids, _ = hf
    exe = os.environ.get("MNEMO_BIN")
    if not exe:
        pytest.skip("MNEMO_BIN not set (scripts/test sets it)")
    docs = [ids, ids[5:50], ids[12:]]
    f = tmp_path / "docs.jsonl"
    f.write_text("".join(json.dumps({"id": f"doc{i}", "ids": d}) + "\n" for i, d in enumerate(docs)))
    for memory in ([], ["--memory", "tova", "--budget", str(BUDGET)]):
        alone = []
        for d in docs:
            g = tmp_path / "one.json"
            g.write_text(json.dumps(d))
            r = subprocess.run([exe, "perplexity", "--model", SMOLLM2, "--ids", str(g), "--json", *memory],
                               capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr
            alone.append(json.loads(r.stdout))
        r = subprocess.run([exe, "perplexity", "--model", SMOLLM2, "--docs", str(f), "--json", "--parallel", "3",
                            *memory], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        assert [d["id"] for d in res["documents"]] == ["doc0", "doc1", "doc2"]
        for got, want in zip(res["documents"], alone):
            assert got["tokens"] == want["tokens"]
            assert got["nll"] == pytest.approx(want["nll"], rel=1e-5), memory
        assert res["tokens"] == sum(a["tokens"] for a in alone)
        # The JSON carries 12 significant digits: the total and each summand are rounded there (up to 2e-9 apart).
        assert res["nll"] == pytest.approx(sum(d["nll"] for d in res["documents"]), rel=1e-10)


def test_chat_with_a_bounded_cache(tmp_path):
    """mnemo chat --memory P --budget K: a budget above the conversation answers exactly as the full cache; a small
    one (re-positioned) keeps the cache at K entries per layer over several turns while the conversation grows."""
    exe = os.environ.get("MNEMO_BIN")
    if not exe:
        pytest.skip("MNEMO_BIN not set (scripts/test sets it)")
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} not set up")

    def chat(*args, stdin=None):
        r = subprocess.run([exe, "chat", "--model", SMOLLM2, "--max-tokens", "24", "--fp32-decode", *args],
                           input=stdin, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r

    msg = ["--message", "What is the capital of France?", "--json"]
    full = json.loads(chat(*msg).stdout)
    same = json.loads(chat(*msg, "--memory", "tova", "--budget", "4096").stdout)
    assert same["reply"] == full["reply"] and same["cache_entries"] == full["cache_entries"]
    r = chat("--memory", "sink", "--budget", "32", "--reposition", stdin="Name three fruits.\nWhich is yellow?\nThanks!\n")
    turns = [(int(a), int(b)) for a, b in re.findall(r"conversation (\d+) tokens, cache (\d+) entries", r.stderr)]
    assert len(turns) == 3, r.stderr
    assert turns[-1][0] > 64 and all(held <= 32 for _, held in turns), turns

"""mnemo's GPT-2 and BERT against Hugging Face transformers.

transformers writes random-weight model directories and what it computes on them (models_oracle.py); the C++
side (tests/model/oracle_test.cpp, the Oracle* tests of $MNEMO_BUILD_DIR/tests/test_model) loads each directory,
computes logits, loss and parameter gradients, and compares within the tolerances stated there; it also saves each
model back, and here transformers must load those saved directories and compute the same outputs. The real MiniLM
is compared on a few hundred Moby-Dick sentences.
"""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MINILM = os.path.join(ROOT, "data", "models", "minilm-l6-h384")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import models_oracle  # noqa: E402


def _test_binary():
    build = os.environ.get("MNEMO_BUILD_DIR")
    if not build:
        pytest.skip("MNEMO_BUILD_DIR not set (scripts/test sets it)")
    exe = os.path.join(build, "tests", "test_model")
    assert os.path.exists(exe), f"{exe} missing: build the test_model target"
    return exe


def _run_gtest(oracle_dir, gtest_filter):
    exe = _test_binary()
    env = dict(os.environ, MNEMO_ORACLE_DIR=str(oracle_dir))
    r = subprocess.run([exe, f"--gtest_filter={gtest_filter}"], env=env, capture_output=True, text=True,
                       timeout=900)
    print(r.stdout[-6000:])
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "[  PASSED  ]" in r.stdout and "SKIPPED" not in r.stdout.split("[  PASSED  ]")[-1], r.stdout[-3000:]


@pytest.fixture(scope="module")
def oracle_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models_oracle")
    models_oracle.write_oracles(str(d))
    return d


def test_random_models_match_transformers(oracle_dir):
    _run_gtest(oracle_dir, "OracleModels.*")


@pytest.mark.parametrize("name,cls", [("gpt2", "GPT2LMHeadModel"), ("bert_mlm", "BertForMaskedLM"),
                                      ("bert_cls", "BertForSequenceClassification")])
def test_transformers_loads_what_mnemo_saved(oracle_dir, name, cls):
    """The C++ test re-saved each model to <name>_resaved; transformers must load it with nothing missing
    or unexpected, with bit-identical parameters, and compute the same logits."""
    resaved = oracle_dir / f"{name}_resaved"
    if not resaved.exists():
        _run_gtest(oracle_dir, "OracleModels.*")
    assert (resaved / "config.json").exists() and (resaved / "model.safetensors").exists()
    Model = getattr(transformers, cls)
    orig = Model.from_pretrained(str(oracle_dir / name)).eval()
    back, info = Model.from_pretrained(str(resaved), output_loading_info=True)
    back.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    so, sb = orig.state_dict(), back.state_dict()
    for k, v in so.items():
        if k.endswith("attn.bias") or k.endswith("masked_bias") or k.endswith("position_ids"):
            continue  # buffers, not parameters
        assert torch.equal(v, sb[k]), k
    from safetensors.torch import load_file
    o = load_file(str(oracle_dir / name / "oracle.safetensors"))
    kw = {"input_ids": o["ids"].long()}
    if "mask" in o:
        kw.update(attention_mask=o["mask"].long(), token_type_ids=o["types"].long())
    with torch.no_grad():
        assert torch.equal(orig(**kw).logits, back(**kw).logits)


def test_minilm_hidden_states_match_transformers(tmp_path):
    if not os.path.exists(os.path.join(MINILM, "model.safetensors")):
        pytest.skip(f"{MINILM} not set up (scripts/setup fetches it)")
    sentences = models_oracle.moby_dick_sentences(ROOT, 300)
    assert len(sentences) == 300
    models_oracle.write_minilm(str(tmp_path), MINILM, sentences)
    _run_gtest(tmp_path, "OracleMiniLm.*")


def _embed_sentences(tmp_path, count, max_length, *flags):
    """MiniLM's ids for `count` Moby-Dick sentences and what `mnemo embed --pool mean FLAGS` prints for them."""
    exe = os.environ.get("MNEMO_BIN")
    if not exe:
        pytest.skip("MNEMO_BIN not set (scripts/test sets it)")
    if not os.path.exists(os.path.join(MINILM, "model.safetensors")):
        pytest.skip(f"{MINILM} not set up (scripts/setup fetches it)")
    import json
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(MINILM)
    ids = [tok(s, truncation=True, max_length=max_length)["input_ids"]
           for s in models_oracle.moby_dick_sentences(ROOT, count)]
    (tmp_path / "ids.json").write_text(json.dumps(ids))
    r = subprocess.run([exe, "embed", "--model", MINILM, "--ids", str(tmp_path / "ids.json"), "--pool", "mean",
                        *flags, "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return exe, ids, json.loads(r.stdout)


def test_embed_verb_mean_pool_matches_transformers(tmp_path):
    """`mnemo embed --pool mean` on MiniLM equals transformers' hidden states averaged over the attention mask."""
    from transformers import BertModel

    exe, ids, out = _embed_sentences(tmp_path, 12, 64, "--batch", "5")
    got = torch.tensor(out["embeddings"])
    model = BertModel.from_pretrained(MINILM).eval()
    with torch.no_grad():
        want = torch.stack([model(input_ids=torch.tensor([x])).last_hidden_state[0].mean(0) for x in ids])
    err = float((got - want).abs().max() / want.abs().max())
    # Same bound as the hidden states (oracle_test.cpp): fp32 rounding through 6 layers, ~1e-6 achieved.
    assert err < 2e-4, err
    bad = tmp_path / "bad.json"
    bad.write_text("[[101, 40000, 102]]")
    r = subprocess.run([exe, "embed", "--model", MINILM, "--ids", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and str(bad) in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_embed_verb_bf16_is_as_close_to_fp32_as_transformers_bf16(tmp_path):
    """`mnemo embed --precision bf16` on MiniLM: sentence vectors near transformers' fp32 ones, and nearer than
    transformers' own bf16 model gets (which also keeps activations in bf16; mnemo rounds only the operands of the
    encoder's products)."""
    from transformers import BertModel

    exe, ids, out = _embed_sentences(tmp_path, 64, 128, "--batch", "16", "--precision", "bf16")
    assert out["precision"] == "bf16"
    got = torch.tensor(out["embeddings"], dtype=torch.float64)
    model = BertModel.from_pretrained(MINILM).eval()
    half = BertModel.from_pretrained(MINILM).eval().to(torch.bfloat16)
    with torch.no_grad():
        want = torch.stack([model(input_ids=torch.tensor([x])).last_hidden_state[0].mean(0) for x in ids]).double()
        theirs = torch.stack([half(input_ids=torch.tensor([x])).last_hidden_state[0].mean(0) for x in ids]).double()

    def worst(v):  # the worst sentence: relative max error and cosine similarity to fp32
        rel = float(((v - want).abs().max(1).values / want.abs().max(1).values).max())
        cos = float(torch.nn.functional.cosine_similarity(v, want, dim=1).min())
        return rel, cos

    ours, ref = worst(got), worst(theirs)
    # bf16 operands carry 8 bits of mantissa (2^-9 relative): products through 6 layers move vectors by ~1e-2 of
    # their largest entry at worst (0.8 % measured, 2026-12-01), directions by far less.
    assert ours[0] < 3e-2 and ours[1] > 0.9995, (ours, ref)
    assert ours[0] < ref[0] and ours[1] > ref[1], (ours, ref)
    assert ours[0] > 1e-5, "identical to fp32: is --precision bf16 doing anything?"
    r = subprocess.run([exe, "embed", "--model", MINILM, "--ids", str(tmp_path / "ids.json"), "--precision", "fp16"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--precision: 'fp16' is not fp32 or bf16" in r.stderr, r.stderr

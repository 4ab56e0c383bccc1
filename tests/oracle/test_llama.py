"""mnemo's Llama against code no one here wrote.

- The block: Hugging Face's LlamaForCausalLM with a tiny grouped-query config and random weights writes a model
  directory and its logits, loss and every parameter gradient; the LlamaOracle test of
  $MNEMO_BUILD_DIR/tests/test_llama loads the directory and must agree (fp32 both sides: 1e-4 relative).
- SmolLM2-135M-Instruct.Q4_1.gguf: transformers loads the same GGUF (dequantizing every tensor to fp32, and
  un-permuting q/k exactly as mnemo does) and mnemo's logits on the same ids must match it closely (the weights are
  the same fp32 numbers; only summation order differs: |difference| <= 2e-3 on logits of magnitude ~30, same argmax
  everywhere, total NLL within 1e-4 relative).
- llama.cpp (PyPI llama-cpp-python, when installed: it builds llama.cpp from source, see docs/llama.md) on the same
  file: llama.cpp quantizes the activations to 8 bits inside its dot products, so agreement is looser (see the
  tolerances below).
- Bad GGUF files (written by llama.cpp's own `gguf` package, then damaged) give one line naming the file and field.
"""
import json
import os
import subprocess

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SMOLLM2_DIR = os.path.join(ROOT, "data", "models", "smollm2-135m")
SMOLLM2 = os.path.join(SMOLLM2_DIR, "SmolLM2-135M-Instruct.Q4_1.gguf")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
from safetensors.torch import save_file  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

# A fixed prompt's ids (SmolLM2's tokenizer: "<|im_start|>The quick brown fox ... Moby-Dick; or, The Whale.").
SENTENCE_IDS = [1, 504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30, 533, 216, 33, 40, 37, 33, 28, 38431,
                8385, 5559, 2587, 26408, 105, 29, 52, 901, 43, 355, 28, 378, 38435, 30]


def _mnemo():
    exe = os.environ.get("MNEMO_BIN")
    if not exe:
        pytest.skip("MNEMO_BIN not set (scripts/test sets it)")
    assert os.path.exists(exe), exe
    return exe


def _run_driver(test_name, **env_vars):
    build = os.environ.get("MNEMO_BUILD_DIR")
    if not build:
        pytest.skip("MNEMO_BUILD_DIR not set (scripts/test sets it)")
    exe = os.path.join(build, "tests", "test_llama")
    assert os.path.exists(exe), f"{exe} missing: build the test_llama target"
    env = dict(os.environ, **{k: str(v) for k, v in env_vars.items()})
    r = subprocess.run([exe, f"--gtest_filter=LlamaOracle.{test_name}"], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "[  PASSED  ] 1 test" in r.stdout and "SKIPPED" not in r.stdout, r.stdout[-3000:]
    return r.stdout


# ---------------------------------------------------------------- the block on random weights


@pytest.mark.parametrize("tied", [False, True])
def test_llama_block_matches_transformers(tmp_path, tied):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=67, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                      rope_theta=500.0, tie_word_embeddings=tied, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).float()
    with torch.no_grad():  # weights large enough that attention and the MLP are far from trivial
        for name, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if p.dim() == 1 else 0.2 * torch.randn_like(p))
    model.save_pretrained(tmp_path, safe_serialization=True)
    B, T = 2, 7
    ids = torch.randint(0, 67, (B, T))
    labels = ids.clone()
    labels[0, 3] = -100  # an ignored label
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    expected = {"ids": ids.float().contiguous(), "labels": labels.float().contiguous(),
                "logits": out.logits.detach().reshape(B * T, -1).contiguous(), "loss": out.loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        expected["grad." + name] = p.grad.detach().contiguous()
    save_file(expected, str(tmp_path / "expected.safetensors"))
    _run_driver("MatchesTransformers", MNEMO_LLAMA_ORACLE_DIR=tmp_path)


def test_perplexity_and_generate_serve_gpt2_directories(tmp_path):
    """The same verbs run GPT-2 directories (the Decoder interface): loss equals GPT2LMHeadModel's."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=32, n_embd=32, n_layer=2, n_head=4)).eval()
    model.save_pretrained(tmp_path, safe_serialization=True)
    ids = torch.randint(0, 97, (20,)).tolist()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    (tmp_path / "ids.json").write_text(json.dumps(ids))
    r = subprocess.run([_mnemo(), "perplexity", "--model", str(tmp_path), "--ids", str(tmp_path / "ids.json"),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    want = _nll(logits.numpy(), ids)
    assert res["tokens"] == 19 and abs(res["nll"] - want) < 1e-4 * want, (res, want)
    r = subprocess.run([_mnemo(), "generate", "--model", str(tmp_path), "--ids", str(tmp_path / "ids.json"),
                        "--max-tokens", "4", "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    seq = list(ids)
    with torch.no_grad():
        for _ in range(4):
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    assert json.loads(r.stdout)["ids"] == seq[len(ids):]


# ---------------------------------------------------------------- SmolLM2 from its GGUF file


@pytest.fixture(scope="module")
def hf_smollm2():
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} not set up (scripts/setup fetches it)")
    pytest.importorskip("accelerate")  # transformers needs it to load GGUF files
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(SMOLLM2_DIR, gguf_file=os.path.basename(SMOLLM2),
                                                 torch_dtype=torch.float32)
    # transformers 4.46 does not tie the LM head for a GGUF without output.weight (it initialises lm_head at
    # random and says so); the file ties it (llama.cpp reads token_embd.weight), as SmolLM2's own config does.
    model.lm_head.weight = model.model.embed_tokens.weight
    model.eval()
    return model


def _mnemo_logits(tmp_path, ids, model=SMOLLM2):
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ids))
    out = tmp_path / "logits.safetensors"
    r = subprocess.run([_mnemo(), "perplexity", "--model", model, "--ids", str(ids_file), "--json",
                        "--save-logits", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return load_file(str(out))["logits"], json.loads(r.stdout)


def _nll(logits, ids):
    lp = torch.log_softmax(torch.from_numpy(logits).double(), -1)
    return -sum(lp[i, ids[i + 1]].item() for i in range(len(ids) - 1))


def test_smollm2_logits_match_transformers(tmp_path, hf_smollm2):
    ids = SENTENCE_IDS
    with torch.no_grad():
        want = hf_smollm2(torch.tensor([ids])).logits[0].numpy()
    got, res = _mnemo_logits(tmp_path, ids)
    assert got.shape == want.shape
    diff = np.abs(got - want).max()
    # Same fp32 weights (dequantization is bit-exact), different summation orders over 30 layers: measured 2e-4.
    assert diff < 2e-3, diff
    assert (got.argmax(-1) == want.argmax(-1)).all()
    nll = _nll(want, ids)
    assert res["tokens"] == len(ids) - 1
    assert abs(res["nll"] - nll) < 1e-4 * abs(nll), (res["nll"], nll)


SENTENCE = "The quick brown fox jumps over the lazy dog. In 1851, Herman Melville published Moby-Dick; or, The Whale."


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_convert_loads_in_transformers(tmp_path, hf_smollm2, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "smol"
    r = subprocess.run([_mnemo(), "convert", SMOLLM2, "--out", str(out), "--dtype", dtype], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    model = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
    assert model.config.tie_word_embeddings
    tok = AutoTokenizer.from_pretrained(out)
    assert tok(SENTENCE)["input_ids"] == SENTENCE_IDS[1:]  # the file says add_bos_token false
    ids = torch.tensor([SENTENCE_IDS])
    with torch.no_grad():
        got = model(ids).logits[0].numpy()
        want = hf_smollm2(ids).logits[0].numpy()
    if dtype == "f32":
        # The same dequantized fp32 numbers in the same layout: transformers computes the same logits bit for bit.
        assert np.array_equal(got, want), np.abs(got - want).max()
    else:
        # bf16 keeps 8 bits of mantissa: the loss moves by well under 5 %.
        assert abs(_nll(got, SENTENCE_IDS) - _nll(want, SENTENCE_IDS)) < 0.05 * _nll(want, SENTENCE_IDS)


def test_generate_greedy_matches_transformers(tmp_path, hf_smollm2):
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(SENTENCE_IDS))
    # --fp32-decode: generate's default 8-bit activations are held to fp32 decoding in tests/llama instead
    # (llama.cpp's tolerances); here the ids must be transformers' exactly.
    r = subprocess.run([_mnemo(), "generate", "--model", SMOLLM2, "--ids", str(ids_file), "--max-tokens", "16",
                        "--ignore-eos", "--json", "--fp32-decode"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["ids"]
    want = []
    with torch.no_grad():  # greedy by hand (generate() trips over torch 1.13's distributed module on Python 3.11)
        out = hf_smollm2(torch.tensor([SENTENCE_IDS]), use_cache=True)
        for _ in range(16):
            nxt = int(out.logits[0, -1].argmax())
            want.append(nxt)
            out = hf_smollm2(torch.tensor([[nxt]]), past_key_values=out.past_key_values, use_cache=True)
    assert got == want


def test_chat_answers_in_chatml():
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} not set up")
    # --fp32-decode: the first reply token is a near tie ("The" 25.33 vs "L" 25.24 in fp32), which chat's default
    # 8-bit activations flip (docs/llama.md, "Exactness"); this checks the template, not that rounding.
    r = subprocess.run([_mnemo(), "chat", "--model", SMOLLM2, "--message", "What is the capital of France?",
                        "--max-tokens", "32", "--json", "--fp32-decode"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Paris" in json.loads(r.stdout)["reply"]


def test_smollm2_llamacpp(tmp_path):
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} not set up")
    try:
        from llama_cpp import Llama
    except ImportError:
        pytest.skip("llama-cpp-python not installed (a benchmark-time install, see docs/llama.md)")
    ids = SENTENCE_IDS
    llm = Llama(model_path=SMOLLM2, n_ctx=256, logits_all=True, n_threads=2, verbose=False, n_batch=256)
    llm.eval(ids)
    want = np.array(llm.scores[: len(ids)], dtype=np.float32)
    got, res = _mnemo_logits(tmp_path, ids)
    # llama.cpp rounds activations to 8 bits (Q8_1 blocks) before each quantized dot product, so its logits differ
    # from exact fp32 math (mnemo and transformers, which agree to 2e-4) by 0.27 on average and 2.2 at most here
    # (logits of magnitude ~30, 30 layers); the predictions and the loss must still agree closely: measured argmax
    # agreement 31/33, NLL 93.44 vs 93.03 (0.45 %).
    diff = np.abs(got - want)
    assert diff.mean() < 0.5 and diff.max() < 4.0, (diff.mean(), diff.max())
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.9
    nll = _nll(want, ids)
    assert abs(res["nll"] - nll) < 0.02 * abs(nll), (res["nll"], nll)


# ---------------------------------------------------------------- bad input


def _write_tiny_gguf(path, *, block_count=1, q_rows=None, truncate=None):
    """A valid 1-layer llama GGUF with F32 weights (or one damaged as asked)."""
    C, H, Hkv, I, V = 16, 2, 1, 24, 11
    hd = C // H
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(block_count) if not isinstance(block_count, str) else w.add_string("llama.block_count",
                                                                                         block_count)
    w.add_context_length(32)
    w.add_embedding_length(C)
    w.add_feed_forward_length(I)
    w.add_head_count(H)
    w.add_head_count_kv(Hkv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    rng = np.random.default_rng(0)

    def t(name, *shape):
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float32) * 0.1)

    t("token_embd.weight", V, C)
    t("output_norm.weight", C)
    t("blk.0.attn_norm.weight", C)
    t("blk.0.ffn_norm.weight", C)
    t("blk.0.attn_q.weight", q_rows or H * hd, C)
    t("blk.0.attn_k.weight", Hkv * hd, C)
    t("blk.0.attn_v.weight", Hkv * hd, C)
    t("blk.0.attn_output.weight", C, H * hd)
    t("blk.0.ffn_gate.weight", I, C)
    t("blk.0.ffn_up.weight", I, C)
    t("blk.0.ffn_down.weight", C, I)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - truncate])


@pytest.mark.parametrize("damage,expect", [
    ({}, None),
    ({"truncate": 100}, "blk.0.ffn_down.weight"),
    ({"block_count": "one"}, "llama.block_count"),
    ({"q_rows": 12}, "blk.0.attn_q.weight"),
    ({"block_count": 2}, "blk.1."),
])
def test_bad_gguf_gives_one_line(tmp_path, damage, expect):
    path = tmp_path / "tiny.gguf"
    _write_tiny_gguf(path, **damage)
    ids = tmp_path / "ids.json"
    ids.write_text("[1, 2, 3, 4]")
    r = subprocess.run([_mnemo(), "perplexity", "--model", str(path), "--ids", str(ids), "--json"],
                       capture_output=True, text=True, timeout=60)
    if expect is None:
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["tokens"] == 3
        return
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(path) in lines[0] and expect in lines[0], lines[0]

"""mnemo's RMT encoder against an RMT written here in PyTorch on Hugging Face's BertForSequenceClassification:
the same random weights (saved as an HF directory plus the rmt.memory tensor), the same token ids, 3 segments;
loss, logits and every parameter's gradient (the initial memory's reaches it only through all segments) compared
within stated tolerances. Also with truncated BPTT (gradient through the last segment only)."""
import json
import os
import subprocess

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from safetensors.torch import load_file, save_file  # noqa: E402

M, L, B, S, LABELS = 3, 6, 2, 3, 6
CLS, SEP, PAD = 1, 2, 0


def build_model(tmp):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=32, num_labels=LABELS,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.BertForSequenceClassification(cfg)
    with torch.no_grad():  # larger weights than the 0.02 init, so gradients through 3 segments are not tiny
        for name, p in model.named_parameters():
            if "LayerNorm" not in name:
                p.normal_(0.0, 0.2)
    memory = torch.randn(M, 32) * 0.5
    d = os.path.join(tmp, "model")
    model.save_pretrained(d, safe_serialization=True)
    tensors = load_file(os.path.join(d, "model.safetensors"))
    tensors["rmt.memory"] = memory.clone()
    save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    c["rmt"] = {"num_mem_tokens": M, "segment_tokens": L, "cls_id": CLS, "sep_id": SEP, "pad_id": PAD,
                "labels": ["bathroom", "hallway", "garden", "office", "bedroom", "kitchen"]}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f)
    return model, memory


def torch_rmt(model, memory0, text, lengths, labels, bptt_depth):
    """The RMT encoder (Bulatov et al.): [CLS] mem [SEP] text [SEP], memory replacing the word embeddings."""
    memory0 = memory0.clone().requires_grad_(True)
    mem = memory0.unsqueeze(0).expand(B, M, -1)
    T = L + M + 3
    out = None
    for s in range(S):
        if bptt_depth and s == S - bptt_depth:
            mem = mem.detach()
        ids = torch.full((B, T), PAD, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        for b in range(B):
            n = lengths[s][b]
            ids[b, 0] = CLS
            ids[b, M + 1] = SEP
            ids[b, M + 2:M + 2 + n] = torch.tensor(text[s][b][:n])
            ids[b, M + 2 + n] = SEP
            mask[b, :M + 3 + n] = 1
        emb = model.bert.embeddings.word_embeddings(ids)
        emb = torch.cat([emb[:, :1], mem, emb[:, M + 1:]], dim=1)
        out = model(inputs_embeds=emb, attention_mask=mask, labels=torch.tensor(labels), output_hidden_states=True)
        mem = out.hidden_states[-1][:, 1:M + 1]
    out.loss.backward()
    return out, memory0


@pytest.mark.parametrize("bptt_depth", [0, 1])
def test_rmt_matches_pytorch(tmp_path, bptt_depth):
    build = os.environ.get("MNEMO_BUILD_DIR")
    if not build or not os.path.exists(os.path.join(build, "tests", "test_rmt")):
        pytest.skip("MNEMO_BUILD_DIR/tests/test_rmt not built")
    model, memory = build_model(str(tmp_path))
    model.eval()  # no dropout (probabilities are 0 anyway); gradients still flow
    g = torch.Generator().manual_seed(1)
    text = torch.randint(3, 50, (S, B, L), generator=g).tolist()
    lengths = [[L, L], [L, 4], [3, L]]  # short rows: padding must be masked like HF's attention_mask
    labels = [2, 5]
    with open(tmp_path / "batch.json", "w") as f:
        json.dump({"B": B, "S": S, "L": L, "text": sum(sum(text, []), []), "lengths": sum(lengths, []),
                   "labels": labels, "bptt_depth": bptt_depth}, f)
    env = dict(os.environ, MNEMO_RMT_ORACLE=str(tmp_path))
    subprocess.run([os.path.join(build, "tests", "test_rmt"), "--gtest_filter=RmtOracle.DumpGradients"],
                   env=env, check=True, capture_output=True)
    got = load_file(str(tmp_path / "grads.safetensors"))

    out, mem0 = torch_rmt(model, memory, text, lengths, labels, bptt_depth)
    # fp32 on both sides, different summation orders: loss and logits to 1e-5 relative.
    assert abs(got["loss"].item() - out.loss.item()) <= 1e-5 * max(1.0, abs(out.loss.item()))
    assert torch.allclose(got["logits"], out.logits.detach(), rtol=1e-4, atol=1e-5)
    # Gradients: per tensor, max |diff| <= 1e-4 + 2e-3 * max |grad| (accumulated fp32 rounding over 3 segments of
    # 2 layers; a wrong gradient is off by O(max |grad|)).
    names = dict(model.named_parameters())
    checked = 0
    for name, p in names.items():
        if name.endswith("position_ids"):
            continue
        ref = p.grad if p.grad is not None else torch.zeros_like(p)
        mine = got[name]
        assert mine.shape == ref.shape, name
        tol = 1e-4 + 2e-3 * ref.abs().max().item()
        assert (mine - ref).abs().max().item() <= tol, (name, (mine - ref).abs().max().item(), tol)
        checked += 1
    ref_mem = mem0.grad if mem0.grad is not None else torch.zeros_like(mem0)
    if bptt_depth == 0:
        assert ref_mem.abs().max().item() > 1e-4  # the memory gradient crossed all 3 segments
    else:
        assert got["rmt.memory"].abs().max().item() == 0.0
    assert (got["rmt.memory"] - ref_mem).abs().max().item() <= 1e-4 + 2e-3 * ref_mem.abs().max().item()
    assert checked >= 30

"""mnemo's RMT decoder against an RMT decoder written here in PyTorch on Hugging Face's LlamaForCausalLM: the same
random weights (a tiny tied grouped-query config saved with save_pretrained, plus the rmt.memory tensor), the same
token ids, 3 segments (2 memory segments + the last); loss, answer logits, the memory's norm and every parameter's
gradient (the initial memory's reaches it only through both memory segments) compared within stated tolerances.
Also with truncated BPTT (PyTorch detach()).

The PyTorch side follows the reference implementation (booydar/recurrent-memory-transformer, MemoryCell):
inputs_embeds = [memory, text, memory], the new memory = hidden_states[-1] (after the final norm) at the write
positions; the last segment is [memory, text, answer] without a write memory, the loss on the answer tokens."""
import json
import os
import subprocess

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from safetensors.torch import load_file, save_file  # noqa: E402

M, L, B, S, A, V, C = 3, 6, 2, 3, 3, 50, 32
PAD, EOS = 0, 1


def build_model(tmp):
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=V, hidden_size=C, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   rms_norm_eps=1e-5, rope_theta=500.0, tie_word_embeddings=True,
                                   attn_implementation="eager")
    model = transformers.LlamaForCausalLM(cfg).float()
    with torch.no_grad():  # larger weights than the 0.02 init, so gradients through 3 segments are not tiny
        for _, p in model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if p.dim() == 1 else 0.2 * torch.randn_like(p))
    memory = torch.randn(M, C) * 0.5
    # The directory save_pretrained writes (tied: no lm_head.weight), with rmt.memory and the "rmt" key added.
    d = os.path.join(tmp, "model")
    os.makedirs(d)
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file({**weights, "rmt.memory": memory}, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config["rmt"] = {"variant": "decoder", "num_mem_tokens": M, "segment_tokens": L, "max_answer_tokens": A,
                     "eos_id": EOS, "pad_id": PAD}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f)
    return model, memory


def torch_rmt_decoder(model, memory0, text, lengths, answers, bptt_depth):
    memory0 = memory0.clone().requires_grad_(True)
    emb = model.get_input_embeddings()
    mem = memory0.unsqueeze(0).expand(B, M, -1)
    for s in range(S - 1):
        if bptt_depth and s == S - bptt_depth:
            mem = mem.detach()
        ids = torch.full((B, L), PAD, dtype=torch.long)
        mask = torch.ones((B, M + L + M), dtype=torch.long)
        for b in range(B):
            n = lengths[s][b]
            ids[b, :n] = torch.tensor(text[s][b][:n])
            mask[b, M + n:M + L] = 0  # a short row's padding is masked (HF attention_mask)
        x = torch.cat([mem, emb(ids), mem], dim=1)
        out = model(inputs_embeds=x, attention_mask=mask, output_hidden_states=True)
        mem = out.hidden_states[-1][:, -M:]
    if bptt_depth == 1:
        mem = mem.detach()
    memory_norm = mem.detach().norm(dim=-1).mean().item()
    # The last segment: [memory] text answer[:-1], right-padded (causal: padding after a row is never seen).
    alen = [sum(1 for y in row if y >= 0) for row in answers]
    W = max(lengths[S - 1][b] + alen[b] - 1 for b in range(B))
    ids = torch.full((B, W), PAD, dtype=torch.long)
    for b in range(B):
        n = lengths[S - 1][b]
        row = text[S - 1][b][:n] + answers[b][:alen[b] - 1]
        ids[b, :len(row)] = torch.tensor(row)
    x = torch.cat([mem, emb(ids)], dim=1)
    logits = model(inputs_embeds=x).logits  # (B, M+W, V)
    picked, targets = [], []
    for b in range(B):
        n = lengths[S - 1][b]
        for k in range(alen[b]):
            picked.append(logits[b, M + n - 1 + k])
            targets.append(answers[b][k])
    picked = torch.stack(picked)
    loss = torch.nn.functional.cross_entropy(picked, torch.tensor(targets))
    loss.backward()
    return loss, picked.detach(), alen, memory_norm, memory0


@pytest.mark.parametrize("bptt_depth", [0, 1, 2])
def test_rmt_decoder_matches_pytorch(tmp_path, bptt_depth):
    build = os.environ.get("MNEMO_BUILD_DIR")
    if not build or not os.path.exists(os.path.join(build, "tests", "test_rmt")):
        pytest.skip("MNEMO_BUILD_DIR/tests/test_rmt not built")
    model, memory = build_model(str(tmp_path))
    g = torch.Generator().manual_seed(1)
    text = torch.randint(3, V, (S, B, L), generator=g).tolist()
    lengths = [[L, L], [L, 4], [3, L]]  # short rows: padding masked in memory segments, packed in the last one
    answers = [[7, EOS, -1], [11, 23, EOS]]
    with open(tmp_path / "batch.json", "w") as f:
        json.dump({"B": B, "S": S, "L": L, "A": A, "text": sum(sum(text, []), []), "lengths": sum(lengths, []),
                   "answers": sum(answers, []), "bptt_depth": bptt_depth}, f)
    env = dict(os.environ, MNEMO_RMT_DECODER_ORACLE=str(tmp_path))
    r = subprocess.run([os.path.join(build, "tests", "test_rmt"), "--gtest_filter=RmtDecoderOracle.DumpGradients"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "SKIPPED" not in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    got = load_file(str(tmp_path / "grads.safetensors"))

    loss, logits, alen, memory_norm, mem0 = torch_rmt_decoder(model, memory, text, lengths, answers, bptt_depth)
    # fp32 on both sides, different summation orders: loss to 1e-5 relative, logits to 1e-4.
    assert abs(got["loss"].item() - loss.item()) <= 1e-5 * max(1.0, abs(loss.item()))
    assert abs(got["memory_norm"].item() - memory_norm) <= 1e-5 * max(1.0, memory_norm)
    i = 0
    for b in range(B):
        for k in range(A):
            if k < alen[b]:
                assert torch.allclose(got["logits"][b, k], logits[i], rtol=1e-4, atol=1e-5), (b, k)
                i += 1
            else:
                assert got["logits"][b, k].abs().max().item() == 0.0
    # Gradients: per tensor, max |diff| <= 1e-4 + 2e-3 * max |grad| (accumulated fp32 rounding over 3 segments of
    # 2 layers; a wrong gradient is off by O(max |grad|)). The tied embedding collects the lookups of every
    # segment and the LM head's gradient, in one tensor on both sides.
    checked = 0
    for name, p in model.named_parameters():
        ref = p.grad if p.grad is not None else torch.zeros_like(p)
        mine = got[name]
        assert mine.shape == ref.shape, name
        tol = 1e-4 + 2e-3 * ref.abs().max().item()
        assert (mine - ref).abs().max().item() <= tol, (name, (mine - ref).abs().max().item(), tol)
        checked += 1
    assert checked == 2 * 9 + 2  # every layer's 9 tensors, the embedding (tied head) and the final norm
    ref_mem = mem0.grad if mem0.grad is not None else torch.zeros_like(mem0)
    if bptt_depth == 0:
        assert ref_mem.abs().max().item() > 1e-4  # the memory gradient crossed all 3 segments
    else:
        assert got["rmt.memory"].abs().max().item() == 0.0
    assert (got["rmt.memory"] - ref_mem).abs().max().item() <= 1e-4 + 2e-3 * ref_mem.abs().max().item()

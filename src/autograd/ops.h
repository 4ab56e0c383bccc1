#pragma once
// Differentiable ops over the kernels (tensor/kernels.h). Each computes its output now and, when the tape records
// and an input needs a gradient, records its backward (which accumulates into the inputs' gradients). Rows are
// tokens: N = B*T. The element-wise ops written here (tanh, add, slicing) are plain loops and serve as their own
// reference; the rest call kernels, whose reference twins are chosen by set_reference_kernels().
#include <cstdint>
#include <vector>

#include "autograd/tape.h"
#include "tensor/kernels.h"

namespace mnemo::ag {

// out (N,OC) = x (N,C) @ w (OC,C)^T + b (OC); b may be an empty Var (no bias).
Var linear(Tape& t, const Var& x, const Var& w, const Var& b);
// The same with w's bf16 copy (OC,C) and x rounded to bf16 (tensor/bf16_linear.h). Inference only: there is no
// backward, and a recording tape throws.
Var linear_bf16(Tape& t, const Var& x, const uint16_t* w, int64_t OC, const Var& b);
// out (N,C) = table (V,C)[ids[n]]; ids (N) are copied (callers check them against V at the input boundary).
Var embedding(Tape& t, const int32_t* ids, int64_t N, const Var& table);
// LayerNorm over the last dim of x (N,C) with weight, bias (C).
Var layernorm(Tape& t, const Var& x, const Var& w, const Var& b, float eps);
Var gelu(Tape& t, const Var& x, Gelu kind);
Var tanh(Tape& t, const Var& x);
// a + b, same shape (residual connections, summed embeddings).
Var add(Tape& t, const Var& a, const Var& b);
// Columns [begin, end) of x (N,C) -> (N, end-begin), copied (splits GPT-2's fused q|k|v projection).
Var slice_cols(Tape& t, const Var& x, int64_t begin, int64_t end);
// Rows `rows` of x (N,C) -> (R,C) (the [CLS] row of each sequence, masked positions for an MLM loss).
Var select_rows(Tape& t, const Var& x, const std::vector<int64_t>& rows);
// Scaled dot-product attention, scale 1/sqrt(hs): q (B*Tq, H*hs), k, v (B*Tk, Hkv*hs) -> (B*Tq, H*hs).
// key_valid (B,Tk) may be null (0 = padding key; backward needs only the saved probabilities); observer (may be null) sees the probabilities.
Var attention(Tape& t, const Var& q, const Var& k, const Var& v, const AttentionShape& s, const uint8_t* key_valid,
              const AttentionObserver* observer);
// Mean over rows with targets[n] >= 0 of -log softmax(logits (N,V))[targets[n]] -> (1). 0 when every row is
// ignored (PyTorch gives NaN there; a batch of padding should not poison a sum).
Var cross_entropy(Tape& t, const Var& logits, const int32_t* targets);
// sum(x * w) -> (1), w the same shape as x: a scalar probe for gradient checks and weighted losses.
Var weighted_sum(Tape& t, const Var& x, const Tensor& w);

}  // namespace mnemo::ag

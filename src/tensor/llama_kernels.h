#pragma once
// The kernels the Llama block adds to tensor/kernels.h: RMSNorm, rotary position embeddings and the SwiGLU
// gate, each a forward/backward pair (outputs first, then saved values, then inputs; backward ACCUMULATES with +=)
// with a plain reference twin in mnemo::ref. set_reference_kernels(true) routes the fast entry points to the
// reference ones, as for the other kernels.
//
// Rotary layout is Hugging Face's ("rotate_half"): within a head of size hs, element i < hs/2 is paired with
// element i + hs/2 and the pair is rotated by angle pos * inv_freq[i]. (GGUF files store Q/K projection rows
// interleaved for llama.cpp's pairing (2i, 2i+1); the io layer un-permutes them at load, so one layout serves both.)
#include <cstdint>

namespace mnemo {

// ---- RMSNorm over the last dimension: out = inp / sqrt(mean(inp^2) + eps) * weight ----
// rstd (N) is saved for backward (may be null at inference). out may equal inp.
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
// dinp (N,C) += ..., dweight (C) += ...; either may be null.
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);

// ---- rotary position embeddings ----
// Angle tables for N rows at absolute positions pos (N): cos, sin (N, half) with
// angle[n][i] = float(pos[n]) * inv_freq[i], computed in fp32 as transformers does (then cos/sin rounded once).
// pos may be negative (rotating cached keys back when they move to an earlier position).
void rope_tables(float* cos, float* sin, const int64_t* pos, const float* inv_freq, int64_t N, int64_t half);
// inv_freq (half) = 1 / (theta^(2i/dim)) / scale for i < half = dim/2 (transformers' default rotary, with linear
// position scaling when scale != 1).
void rope_inv_freq(float* inv_freq, int64_t dim, float theta, float scale);
// out (N, H, hs) = rotate(inp (N, H, hs)) by the row's angles (cos, sin (N, hs/2)); out may equal inp.
void rope_forward(float* out, const float* inp, const float* cos, const float* sin, int64_t N, int64_t H, int64_t hs);
// The rotation is orthogonal: dinp (N, H, hs) += rotate(dout) by the negated angles.
void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, int64_t N, int64_t H,
                   int64_t hs);

// ---- SwiGLU: out = silu(gate) * up, silu(g) = g * sigmoid(g) ----
// out, gate, up (n); out may equal gate or up.
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
// dgate, dup (n) += ...; either may be null.
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// ---- attention of one query token over cached entries (decode), for one kv head and its G query heads ----
// Inference only (training goes through attention_forward/backward). Callers split work over entries (scores)
// or over output dimensions (mix), so each kernel runs on one thread.
// s[g * ld + j] = scale * dot(q (G, hs) row g, K (n, hs) row j), for g < G, j < n.
void attn_scores(float* s, int64_t ld, const float* q, const float* K, int64_t n, int64_t G, int64_t hs, float scale);
// In place over the first m of n entries of a row: p = softmax(s[0..m)); p[m..n) = 0 (entries the query cannot see).
void attn_softmax(float* s, int64_t m, int64_t n);
// out[g * ldo + d] = sum_j p[g * ld + j] * V[j * hs + d] for g < G, d in [d0, d1) (overwrites).
void attn_mix(float* out, int64_t ldo, const float* p, int64_t ld, const float* V, int64_t n, int64_t G, int64_t hs,
              int64_t d0, int64_t d1);

namespace ref {
void attn_scores(float* s, int64_t ld, const float* q, const float* K, int64_t n, int64_t G, int64_t hs, float scale);
void attn_softmax(float* s, int64_t m, int64_t n);
void attn_mix(float* out, int64_t ldo, const float* p, int64_t ld, const float* V, int64_t n, int64_t G, int64_t hs,
              int64_t d0, int64_t d1);
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);
void rope_forward(float* out, const float* inp, const float* cos, const float* sin, int64_t N, int64_t H, int64_t hs);
void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, int64_t N, int64_t H,
                   int64_t hs);
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);
}  // namespace ref

}  // namespace mnemo

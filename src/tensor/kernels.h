#pragma once
// fp32 kernels, each a forward/backward pair (llm.c style: outputs first, then saved values, then inputs; backward
// ACCUMULATES into gradients with +=). Every kernel has a plain reference twin in namespace mnemo::ref with the
// same signature; set_reference_kernels(true) routes the fast entry points to the reference ones at run time
// (tests hold the fast kernels to the reference). All kernels run on the one thread pool (base/thread_pool.h).
//
// Layouts: row-major; N = number of rows (tokens, B*T), C = channels. Linear weights are stored as nn.Linear's
// (OC, C): GPT-2's Conv1D (C, OC) is transposed once at load/save time by the io layer.
#include <cstdint>
#include <functional>

namespace mnemo {

void set_reference_kernels(bool on);
bool reference_kernels();

// ---- matrix products (gemm.cpp: oneDNN) ----
// C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C. Row-major with leading dimensions; op(X) = X^T when trans_x.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC, may be null)
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t C,
                    int64_t OC);
// dinp (N,C) += dout @ weight; dweight (OC,C) += dout^T @ inp; dbias (OC) += sum_rows dout. Any of dinp, dweight,
// dbias may be null (not needed).
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t C, int64_t OC);
// Decoding one token: y (rows) = W (rows,cols) @ x (cols) + bias (rows, may be null). AVX-512, split over rows.
void matvec(float* y, const float* W, const float* x, const float* bias, int64_t rows, int64_t cols);

// ---- embedding ----
// out (N,C) = table[ids[n]]; ids must be in [0, V) (checked by the caller at the input boundary).
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t C);
// dtable (V,C) += scatter of dout (N,C) by ids.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t C);

// ---- LayerNorm over the last dimension ----
// mean, rstd (N) are saved for backward (may be null at inference).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);

// ---- GELU ----
enum class Gelu { Tanh, Erf };  // GPT-2 "gelu_new" is Tanh; BERT "gelu" is Erf
void gelu_forward(float* out, const float* inp, int64_t n, Gelu kind);
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n, Gelu kind);

// ---- softmax over rows of length C ----
void softmax_forward(float* out, const float* inp, int64_t N, int64_t C);
void softmax_backward(float* dinp, const float* out, const float* dout, int64_t N, int64_t C);

// ---- scaled dot-product attention ----
// Queries of H heads attend to keys/values of Hkv heads (H % Hkv == 0; query head h uses kv head h / (H/Hkv)).
// causal: query i sits at absolute position q_offset + i and sees keys j <= q_offset + i (keys start at 0).
struct AttentionShape {
  int64_t B = 1, Tq = 1, Tk = 1, H = 1, Hkv = 1, hs = 1;
  int64_t q_offset = 0;
  bool causal = false;
};
// Called once per forward with the probabilities (B,H,Tq,Tk) after masking and softmax.
using AttentionObserver = std::function<void(const float* probs, const AttentionShape& shape)>;
// out (B,Tq,H,hs); probs (B,H,Tq,Tk) is written and must be kept for backward; q (B,Tq,H,hs); k, v (B,Tk,Hkv,hs);
// key_valid (B,Tk) may be null, else 0 marks a padding key that no query sees (a row with no visible key gives
// zero output). observer may be null. probs may be null when neither backward nor an observer needs it: each
// worker then keeps one head's probabilities in its own small buffer, which stays in cache.
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const uint8_t* key_valid, const AttentionShape& s, float scale,
                       const AttentionObserver* observer);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q,
                        const float* k, const float* v, const AttentionShape& s, float scale);

// ---- cross-entropy over logits (N,V) ----
// losses (N) = -log softmax(logits[n])[targets[n]]; targets[n] < 0 means ignore (loss 0).
void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V);
// dlogits (N,V) += (softmax(logits) - onehot(target)) * dlosses[n]; ignored rows get nothing.
void crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets, const float* dlosses,
                           int64_t N, int64_t V);

// ---- AdamW (decoupled weight decay, bias-corrected; step is 1-based) ----
struct AdamWConfig {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
};
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWConfig& cfg,
                  int64_t step);

// ---- sum of squares (the global gradient norm) ----
// sum_i x[i]^2 over x (n), in double. The fast kernel splits x by n alone, never by the thread count, so its
// result is the same bits for every thread count.
double sum_squares(const float* x, int64_t n);

namespace ref {
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t C,
                    int64_t OC);
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t C, int64_t OC);
void matvec(float* y, const float* W, const float* x, const float* bias, int64_t rows, int64_t cols);
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t C);
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t C);
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);
void gelu_forward(float* out, const float* inp, int64_t n, Gelu kind);
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n, Gelu kind);
void softmax_forward(float* out, const float* inp, int64_t N, int64_t C);
void softmax_backward(float* dinp, const float* out, const float* dout, int64_t N, int64_t C);
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const uint8_t* key_valid, const AttentionShape& s, float scale,
                       const AttentionObserver* observer);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q,
                        const float* k, const float* v, const AttentionShape& s, float scale);
void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V);
void crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets, const float* dlosses,
                           int64_t N, int64_t V);
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWConfig& cfg,
                  int64_t step);
double sum_squares(const float* x, int64_t n);
}  // namespace ref

}  // namespace mnemo

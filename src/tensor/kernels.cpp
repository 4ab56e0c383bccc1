// Fast kernel entry points. Temporarily forwarding to the reference twins while the fast versions are written.
#include <atomic>

#include "tensor/kernels.h"

namespace mnemo {

namespace {
std::atomic<bool> use_reference{false};
}

void set_reference_kernels(bool on) { use_reference.store(on); }
bool reference_kernels() { return use_reference.load(); }

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  ref::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t C,
                    int64_t OC) {
  ref::linear_forward(out, inp, weight, bias, N, C, OC);
}
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t C, int64_t OC) {
  ref::linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}
void matvec(float* y, const float* W, const float* x, const float* bias, int64_t rows, int64_t cols) {
  ref::matvec(y, W, x, bias, rows, cols);
}
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t C) {
  ref::embedding_forward(out, ids, table, N, C);
}
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t C) {
  ref::embedding_backward(dtable, dout, ids, N, C);
}
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps) {
  ref::layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
}
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  ref::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
void gelu_forward(float* out, const float* inp, int64_t n, Gelu kind) { ref::gelu_forward(out, inp, n, kind); }
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n, Gelu kind) {
  ref::gelu_backward(dinp, inp, dout, n, kind);
}
void softmax_forward(float* out, const float* inp, int64_t N, int64_t C) { ref::softmax_forward(out, inp, N, C); }
void softmax_backward(float* dinp, const float* out, const float* dout, int64_t N, int64_t C) {
  ref::softmax_backward(dinp, out, dout, N, C);
}
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const uint8_t* key_valid, const AttentionShape& s, float scale,
                       const AttentionObserver* observer) {
  ref::attention_forward(out, probs, q, k, v, key_valid, s, scale, observer);
}
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q,
                        const float* k, const float* v, const AttentionShape& s, float scale) {
  ref::attention_backward(dq, dk, dv, dout, probs, q, k, v, s, scale);
}
void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
  ref::crossentropy_forward(losses, logits, targets, N, V);
}
void crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets, const float* dlosses,
                           int64_t N, int64_t V) {
  ref::crossentropy_backward(dlogits, logits, targets, dlosses, N, V);
}
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWConfig& cfg,
                  int64_t step) {
  ref::adamw_update(param, grad, m, v, n, cfg, step);
}

}  // namespace mnemo

#pragma once
// Reduced-precision and block-quantized weights: the scalar half formats (fp16, bf16) and the block layouts of
// llama.cpp's GGUF files (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, and the 256-wide "K" super-blocks Q2_K..Q6_K, Q8_K).
//
// A quantized row of n values (n a multiple of the block width) is n / block_size blocks laid end to end; a
// matrix (rows, cols) is rows such rows, so row r starts at byte r * row_bytes(type, cols). Each block stores
// small integers q and one or more fp16 scales d (and mins m): value = d * q (symmetric types) or d * q + m.
//
// Every dequantizer has a plain reference twin in mnemo::ref (readable scalar loops, the definition the tests
// hold the fast one to); set_reference_kernels(true) (tensor/kernels.h) routes the fast entry points to them.
// Dequantization is bit-exact with llama.cpp's (and the gguf Python package's): each value is computed as
// (d * q) + m in fp32 with separate multiply and add, never fused, in both the reference and the AVX-512 paths.
//
// Quantized matvec y = W x (W quantized rows, x and y fp32) keeps x in fp32 and accumulates in fp32: each
// block's integers are widened to fp32 and multiplied by x directly, so the only error against
// "dequantize W, then fp32 matvec" is fp32 summation order.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace mnemo {

// ---- scalar half formats ----
// IEEE binary16 -> fp32, exact for every input (subnormals, inf, NaN keep their meaning).
inline float fp16_to_fp32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);  // normal: rebias 15 -> 127
  } else if (man == 0) {
    bits = sign;  // +-0
  } else {        // subnormal: value = man * 2^-24, normalise it
    int shift = 0;
    while (!(man & 0x400)) man <<= 1, ++shift;
    bits = sign | (uint32_t(113 - shift) << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
// fp32 -> binary16, round to nearest even; overflow goes to inf, NaN stays NaN.
uint16_t fp32_to_fp16(float f);
// bf16 is the top half of an fp32: widening is exact.
inline float bf16_to_fp32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
// fp32 -> bf16, round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t fp32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffff) > 0x7f800000) return uint16_t((bits >> 16) | 0x40);
  return uint16_t((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

// Whole-array conversions (AVX-512 where it helps).
void fp16_to_fp32_row(float* out, const uint16_t* in, int64_t n);
void bf16_to_fp32_row(float* out, const uint16_t* in, int64_t n);
void fp32_to_bf16_row(uint16_t* out, const float* in, int64_t n);
void fp32_to_fp16_row(uint16_t* out, const float* in, int64_t n);

// ---- GGML tensor types (numbering is the file format's: ggml.h enum ggml_type) ----
enum class QType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

// Name ("Q4_1") of a type number, or nullptr when mnemo does not know the type.
const char* qtype_name(uint32_t type);
bool qtype_known(uint32_t type);
// Values per block and bytes per block (1 and the element size for plain types).
int64_t qtype_block_size(QType t);
int64_t qtype_block_bytes(QType t);
// Bytes of a row of n values; n must be a multiple of the block size (checked by callers at the boundary).
inline int64_t row_bytes(QType t, int64_t n) { return n / qtype_block_size(t) * qtype_block_bytes(t); }
// True when dequantize_row / quant_matvec accept the type (the float and quantized types, not the integers).
bool qtype_dequantizable(QType t);

// ---- block layouts (byte-exact with ggml-common.h; fp16 fields are raw uint16 bits) ----
constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32, QK_K = 256;

struct BlockQ4_0 {          // value = d * (q - 8)
  uint16_t d;               // fp16 scale
  uint8_t qs[QK4_0 / 2];    // low nibbles are values 0..15, high nibbles values 16..31
};
struct BlockQ4_1 {          // value = d * q + m
  uint16_t d, m;            // fp16 scale, fp16 min
  uint8_t qs[QK4_1 / 2];    // nibbles as Q4_0
};
struct BlockQ5_0 {          // value = d * (q - 16), q = nibble | (bit from qh) << 4
  uint16_t d;
  uint8_t qh[4];            // fifth bits, bit j for value j (little-endian uint32)
  uint8_t qs[QK5_0 / 2];
};
struct BlockQ5_1 {          // value = d * q + m
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[QK5_1 / 2];
};
struct BlockQ8_0 {          // value = d * q
  uint16_t d;
  int8_t qs[QK8_0];
};
struct BlockQ8_1 {          // value = d * q; s = d * sum(q) (used only as a dot-product helper by ggml)
  uint16_t d, s;
  int8_t qs[QK8_1];
};
// K super-blocks: 256 values in 16 (or 8) sub-blocks with 6- or 4-bit sub-scales relative to fp16 d / dmin.
struct BlockQ2_K {
  uint8_t scales[QK_K / 16];  // low nibble scale, high nibble min, per 16 values
  uint8_t qs[QK_K / 4];       // 2-bit quants
  uint16_t d, dmin;
};
struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];    // high bit of each quant
  uint8_t qs[QK_K / 4];       // low 2 bits
  uint8_t scales[12];         // 16 6-bit scales, packed
  uint16_t d;
};
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];         // 8 6-bit scales and 8 6-bit mins, packed
  uint8_t qs[QK_K / 2];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];       // low 4 bits
  uint8_t qh[QK_K / 4];       // high 2 bits
  int8_t scales[QK_K / 16];   // 8-bit sub-scales
  uint16_t d;
};
struct BlockQ8_K {
  float d;                    // fp32 scale
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];   // sums of groups of 16 quants
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// ---- dequantization ----
// out (n) = values of one row of type t stored at `in` (row_bytes(t, n) bytes, any alignment).
void dequantize_row(QType t, const void* in, float* out, int64_t n);
// Rows (rows, cols) -> out (rows, cols), split over rows on the thread pool.
void dequantize_rows(QType t, const void* in, float* out, int64_t rows, int64_t cols);

// ---- quantization (round to nearest, as ggml's reference quantizers) for the simple block types ----
// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0. Used by tests and benchmarks to make quantized
// weights; not bit-exact with ggml's quantizers in every tie case (ggml's own Q4_0 rounding depends on FMA).
bool qtype_quantizable(QType t);
void quantize_row(QType t, const float* in, void* out, int64_t n);

// ---- quantized matrix-vector product ----
// y (rows) = W (rows, cols; rows of type t) @ x (cols). cols must be a multiple of the block size. x stays fp32;
// accumulation is fp32 (see the top of this file). Block-wise AVX-512 for F32/F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0;
// the K types dequantize one row into a small buffer, then dot. Split over rows on the thread pool; each row is
// computed by one worker in a fixed order, so y does not depend on the thread count.
void quant_matvec(QType t, float* y, const void* W, const float* x, int64_t rows, int64_t cols);

// ---- quantized matvec with x quantized to 8 bits (llama.cpp's scheme) ----
// x is quantized once per call site (share it between matrices that multiply the same x: q/k/v, gate/up) to
// blocks of 32 int8 with an fp32 scale d = max|x| / 127, and each block of W is dotted with it in integers
// (AVX-512 VNNI vpdpbusd), then scaled: y = sum_b dW_b * dx_b * (qW_b . qx_b) (+ mW_b * dx_b * sum qx_b).
// Faster than quant_matvec, but x carries a rounding error of up to dx/2 per value: |y - y_fp32x| <=
// sum_b dx_b / 2 * sum_{j in b} |w_j| (tested); about 0.55 % relative on SmolLM2's matrices for a normal x (docs/formats.md).
struct Q8Vector {
  int64_t n = 0;               // values (a multiple of 32)
  std::vector<int8_t> q;       // (n) quants
  std::vector<float> d;        // (n/32) scale per block
  std::vector<float> s;        // (n/32) d * sum(q) per block
  std::vector<int32_t> isum;   // (n/32) sum(q) per block
};
// n must be a multiple of 32; out's storage is reused across calls.
void quantize_q8_vector(const float* x, int64_t n, Q8Vector* out);
// Types with an integer-dot kernel: Q4_0, Q4_1, Q8_0. Others are refused by quant_matvec_q8 (use quant_matvec).
bool quant_matvec_q8_supported(QType t);
// y (rows) = W (rows, x.n) @ x.
void quant_matvec_q8(QType t, float* y, const void* W, const Q8Vector& x, int64_t rows);

// ---- the decode product ----
// Decoding one token multiplies every weight matrix by one activation vector. decode_matvec is quant_matvec (fp32
// x: equal to dequantize-then-fp32 up to summation order) unless set_int8_decode(true): then the types with an
// integer kernel (Q4_0, Q4_1, Q8_0) go through quant_matvec_q8, x quantized inside the call (well under a
// microsecond at these sizes, less than sharing one buffer between the pool's workers). Off by default: the
// library's results match fp32 references; `mnemo generate` and `chat` turn it on (docs/llama.md).
void set_int8_decode(bool on);
bool int8_decode();
// y (rows) = W (rows, cols; rows of type t) @ x (cols).
void decode_matvec(QType t, float* y, const void* W, const float* x, int64_t rows, int64_t cols);

namespace ref {
void dequantize_row(QType t, const void* in, float* out, int64_t n);
void quant_matvec(QType t, float* y, const void* W, const float* x, int64_t rows, int64_t cols);
void quantize_q8_vector(const float* x, int64_t n, Q8Vector* out);
void quant_matvec_q8(QType t, float* y, const void* W, const Q8Vector& x, int64_t rows);
}  // namespace ref

}  // namespace mnemo

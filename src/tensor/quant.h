#pragma once
// Reduced-precision weights: the scalar half formats (fp16, bf16).

#include <cstddef>
#include <cstdint>
#include <cstring>

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

}  // namespace mnemo

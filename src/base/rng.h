#pragma once
// A small, fast, seedable random generator (xoshiro256**) whose whole state can be saved in a checkpoint and
// restored, so a resumed run draws the same numbers as one that never stopped.
#include <array>
#include <cmath>
#include <cstdint>

namespace mnemo {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }

  void seed_with(uint64_t seed) {
    uint64_t z = seed;
    for (auto& w : s_) w = splitmix(z);
    has_spare_ = false;
  }
  uint64_t next_u64() {
    uint64_t result = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias is irrelevant here).
  uint64_t below(uint64_t n) { return uint64_t((unsigned __int128)next_u64() * n >> 64); }
  // Standard normal (Box–Muller; the spare is part of the state).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    double r = std::sqrt(-2.0 * std::log(u1)), th = 6.283185307179586 * u2;
    spare_ = r * std::sin(th);
    has_spare_ = true;
    return r * std::cos(th);
  }

  // Serialisable state: 4 words + spare flag + spare value (as bits).
  std::array<uint64_t, 6> state() const {
    uint64_t bits;
    static_assert(sizeof bits == sizeof spare_);
    __builtin_memcpy(&bits, &spare_, sizeof bits);
    return {s_[0], s_[1], s_[2], s_[3], uint64_t(has_spare_), bits};
  }
  void set_state(const std::array<uint64_t, 6>& st) {
    for (int i = 0; i < 4; ++i) s_[i] = st[i];
    has_spare_ = st[4] != 0;
    __builtin_memcpy(&spare_, &st[5], sizeof spare_);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix(uint64_t& z) {
    uint64_t r = (z += 0x9E3779B97F4A7C15ull);
    r = (r ^ (r >> 30)) * 0xBF58476D1CE4E5B9ull;
    r = (r ^ (r >> 27)) * 0x94D049BB133111EBull;
    return r ^ (r >> 31);
  }
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace mnemo

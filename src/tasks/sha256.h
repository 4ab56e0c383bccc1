#pragma once
// SHA-256 (FIPS 180-4), for checking the registry files the corpora are built from against pinned digests.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mnemo::tasks {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  std::array<uint8_t, 32> digest();  // finishes the hash; the object must not be updated afterwards
  std::string hex();                 // digest() as 64 lowercase hex digits

 private:
  void block(const uint8_t* p);  // one 64-byte block
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes hashed so far
};

std::string sha256_hex(std::string_view bytes);

}  // namespace mnemo::tasks

#pragma once
// safetensors (Hugging Face's tensor file): an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}
// (padded with spaces), then the byte buffer the offsets point into (relative to its start).
//
// Reading memory-maps the file and checks everything against it before any tensor is touched: the header length,
// the JSON, every dtype, shape and offset pair (in range, size = numel * element size, no overlaps and no gaps —
// the same rules as the reference implementation). Any violation is a one-line mnemo::Error naming the file and
// the tensor.
//
// Writing goes through atomic_write (a reader never sees half a file) with the header padded so that the buffer
// starts at a multiple of 8 bytes; tensors are laid out widest dtype first, so every F32 tensor is 4-byte aligned
// in the file and can be borrowed straight from the mapping when read back.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/json.h"
#include "tensor/tensor.h"

namespace mnemo {

// Element types of the format (the spelling in files is the enumerator's name).
enum class DType { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };
const char* dtype_name(DType t);
size_t dtype_size(DType t);
// Parses "F32" etc.; returns false for an unknown name.
bool parse_dtype(const std::string& name, DType* out);

// One tensor of a file: where its bytes are in the mapping.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  const uint8_t* data = nullptr;  // into the mapping; nbytes = numel * dtype_size
  size_t nbytes = 0;
  size_t offset = 0;              // of data from the start of the file
};

class SafetensorsFile {
 public:
  // Maps and validates PATH; throws Error on any problem (see the top of this file).
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensor names in file order (ascending data offset).
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Throws Error("PATH: no tensor 'NAME'") when absent.
  const SafetensorsEntry& entry(const std::string& name) const;
  // The "__metadata__" object (string keys to string values; empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor as fp32. An aligned F32 tensor borrows the mapping (no copy; the tensor keeps the mapping alive)
  // and is READ-ONLY: the mapping is not writable, so clone() it before writing. Other float and integer dtypes
  // are converted into fresh storage (F8 types are refused with an Error).
  Tensor tensor(const std::string& name) const;
  // Same, and the shape must equal `expected` (Error "PATH: tensor 'NAME' has shape [..], expected [..]").
  Tensor tensor(const std::string& name, const Shape& expected) const;
  // Always fresh, writable storage.
  Tensor tensor_copy(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  std::vector<SafetensorsEntry> entries_;  // in file order
  std::vector<std::string> names_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write. Either `tensor` (fp32 values, stored as `dtype` F32, BF16 or F16) or raw `bytes` already
// in `dtype` with `shape` (for integer data such as token ids or counters).
struct SafetensorsItem {
  std::string name;
  Tensor tensor;
  DType dtype = DType::F32;
  Shape shape;        // raw items only
  std::string bytes;  // raw items only: numel(shape) * dtype_size(dtype) bytes

  SafetensorsItem(std::string n, Tensor t, DType d = DType::F32) : name(std::move(n)), tensor(std::move(t)), dtype(d) {}
  static SafetensorsItem raw(std::string n, DType d, Shape s, std::string b) {
    SafetensorsItem it(std::move(n), Tensor(), d);
    it.shape = std::move(s);
    it.bytes = std::move(b);
    return it;
  }
};

// Writes PATH atomically. Names must be unique, non-empty and not "__metadata__" (Error otherwise).
void save_safetensors(const std::string& path, const std::vector<SafetensorsItem>& items,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace mnemo

#pragma once
// GGUF (llama.cpp's model file), versions 2 and 3, little-endian:
//   magic "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count,
//   metadata: { string key, u32 value_type, value }*      (strings are u64 length + bytes, no terminator;
//                                                           arrays are u32 element type, u64 count, elements)
//   tensor infos: { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }*
//   padding to general.alignment (default 32), then the tensor data; offsets are relative to its start.
// ne[0] is the fastest-varying dimension, so a tensor with ne = {cols, rows} is a row-major (rows, cols) matrix;
// GgufTensor::shape is the mnemo (row-major, outermost first) order, ne reversed.
//
// The file is memory-mapped and every count, length and offset is checked against the bytes that remain before
// it is used; any problem is a one-line mnemo::Error naming the file and the key or tensor at fault. Typed
// metadata accessors name the file and the key when the key is absent or holds another type.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "base/file.h"
#include "tensor/quant.h"
#include "tensor/tensor.h"

namespace mnemo {

// Metadata value types (numbering is the file format's).
enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);  // "uint32", "array", ...

// One metadata value. Integers keep their sign in `i`/`u` (the type says which), floats widen to double.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  GgufType elem_type = GgufType::UINT8;  // arrays only
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> v;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::FLOAT32 || type == GgufType::FLOAT64; }
  // "uint32", "array of string", ...
  std::string type_str() const;
};

struct GgufTensor {
  std::string name;
  QType type = QType::F32;
  std::vector<int64_t> ne;   // GGUF order: ne[0] fastest
  Shape shape;               // mnemo order: ne reversed
  int64_t numel = 0;
  const uint8_t* data = nullptr;  // into the mapping
  size_t nbytes = 0;
  size_t offset = 0;              // absolute, from the start of the file
};

class GgufFile {
 public:
  // Maps and validates PATH (see the top of this file).
  explicit GgufFile(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }

  // ---- metadata ----
  // Keys in file order.
  const std::vector<std::string>& keys() const { return keys_; }
  bool has(const std::string& key) const { return meta_.count(key) != 0; }
  // Throws Error("PATH: no metadata key 'KEY'") when absent.
  const GgufValue& value(const std::string& key) const;
  // Typed access: any integer type whose value fits (Error names the key, the stored type and the value
  // otherwise); floats accept float32 or float64; strings and bools exactly.
  int64_t get_int(const std::string& key) const;
  uint32_t get_u32(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;
  // Same, with a fallback when the key is absent (a present key of the wrong type is still an Error).
  int64_t int_or(const std::string& key, int64_t fallback) const;
  double float_or(const std::string& key, double fallback) const;
  std::string string_or(const std::string& key, const std::string& fallback) const;
  bool bool_or(const std::string& key, bool fallback) const;

  // ---- tensors ----
  // Tensor names in file order.
  const std::vector<std::string>& tensor_names() const { return tensor_names_; }
  bool has_tensor(const std::string& name) const { return tindex_.count(name) != 0; }
  // Throws Error("PATH: no tensor 'NAME'").
  const GgufTensor& tensor(const std::string& name) const;
  // The tensor as fp32, (rows..., cols) row-major. F32 data aligned to 4 bytes is borrowed from the mapping
  // (READ-ONLY, keeps the mapping alive); everything else is dequantized into fresh storage on the thread pool.
  // Integer tensor types (I8..I64, F64) are converted.
  Tensor to_fp32(const std::string& name) const;
  // Same, and the mnemo-order shape must equal `expected` (Error naming the tensor otherwise).
  Tensor to_fp32(const std::string& name, const Shape& expected) const;

  // The mapping, for callers that keep quantized weights (e.g. quant_matvec straight from the file).
  std::shared_ptr<const MappedFile> mapping() const { return map_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::vector<std::string> keys_;
  std::map<std::string, GgufValue> meta_;
  std::vector<std::string> tensor_names_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tindex_;
};

// Renders a value as JSON text (arrays longer than `max_items` are cut with a trailing "..." note; 0 = all).
std::string gguf_value_json(const GgufValue& v, size_t max_items = 0);

}  // namespace mnemo

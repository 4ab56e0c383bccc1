#include "io/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "base/json.h"
#include "base/thread_pool.h"

namespace mnemo {

namespace {

constexpr int kMaxDims = 4;          // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 16;   // nested arrays deeper than this are a corrupt file, not a model

// Smallest encoding of one value of a type (so a count can be checked against the bytes left before any
// allocation: a corrupt count of 2^60 must fail here, not in reserve()).
size_t min_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: case GgufType::STRING: return 8;
    case GgufType::ARRAY: return 12;
  }
  return 1;
}

bool known_type(uint32_t t) { return t <= uint32_t(GgufType::FLOAT64); }

// A bounds-checked little-endian reader over the mapping; errors say what was being read and where.
struct Cursor {
  const std::string& path;
  const uint8_t* base;
  size_t size, pos = 0;

  size_t left() const { return size - pos; }
  void need(size_t n, const std::string& what) const {
    if (n > left())
      throw Error(cat(path, ": truncated file: ", what, " at byte ", pos, " needs ", n, " bytes, ", left(), " left"));
  }
  template <typename T>
  T get(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str(const std::string& what) {
    uint64_t n = get<uint64_t>(what + " length");
    need(n, cat(what, " (", n, " bytes)"));
    std::string s(reinterpret_cast<const char*>(base + pos), size_t(n));
    pos += size_t(n);
    return s;
  }
};

GgufValue read_value(Cursor& c, GgufType type, const std::string& what, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::UINT8: v.v = uint64_t(c.get<uint8_t>(what)); break;
    case GgufType::INT8: v.v = int64_t(c.get<int8_t>(what)); break;
    case GgufType::UINT16: v.v = uint64_t(c.get<uint16_t>(what)); break;
    case GgufType::INT16: v.v = int64_t(c.get<int16_t>(what)); break;
    case GgufType::UINT32: v.v = uint64_t(c.get<uint32_t>(what)); break;
    case GgufType::INT32: v.v = int64_t(c.get<int32_t>(what)); break;
    case GgufType::UINT64: v.v = c.get<uint64_t>(what); break;
    case GgufType::INT64: v.v = c.get<int64_t>(what); break;
    case GgufType::FLOAT32: v.v = double(c.get<float>(what)); break;
    case GgufType::FLOAT64: v.v = c.get<double>(what); break;
    case GgufType::BOOL: {
      uint8_t b = c.get<uint8_t>(what);
      if (b > 1) throw Error(cat(c.path, ": ", what, ": bool value ", int(b), " is neither 0 nor 1"));
      v.v = b == 1;
      break;
    }
    case GgufType::STRING: v.v = c.str(what); break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) throw Error(cat(c.path, ": ", what, ": arrays nested more than ", kMaxArrayDepth, " deep"));
      uint32_t et = c.get<uint32_t>(what + " element type");
      if (!known_type(et)) throw Error(cat(c.path, ": ", what, ": unknown array element type ", et));
      v.elem_type = GgufType(et);
      uint64_t n = c.get<uint64_t>(what + " count");
      if (n > c.left() / min_size(v.elem_type))
        throw Error(cat(c.path, ": ", what, ": array of ", n, " ", gguf_type_name(v.elem_type), " runs past the end of the file"));
      std::vector<GgufValue> items;
      items.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(c, v.elem_type, what, depth + 1));
      v.v = std::move(items);
      break;
    }
  }
  return v;
}

template <typename T>
void convert_ints(float* out, const uint8_t* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T x;
    std::memcpy(&x, in + size_t(i) * sizeof(T), sizeof(T));
    out[i] = float(x);
  }
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "uint8";
    case GgufType::INT8: return "int8";
    case GgufType::UINT16: return "uint16";
    case GgufType::INT16: return "int16";
    case GgufType::UINT32: return "uint32";
    case GgufType::INT32: return "int32";
    case GgufType::FLOAT32: return "float32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "uint64";
    case GgufType::INT64: return "int64";
    case GgufType::FLOAT64: return "float64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16: case GgufType::UINT32:
    case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64: return true;
    default: return false;
  }
}

std::string GgufValue::type_str() const {
  if (type != GgufType::ARRAY) return gguf_type_name(type);
  return cat("array of ", gguf_type_name(elem_type));
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
  map_ = std::make_shared<MappedFile>(path);
  Cursor c{path, map_->data(), map_->size()};
  if (c.size < 4 || std::memcmp(c.base, "GGUF", 4) != 0)
    throw Error(cat(path, ": not a GGUF file (no \"GGUF\" magic at the start)"));
  c.pos = 4;
  version_ = c.get<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    if (version_ == 1) throw Error(cat(path, ": GGUF version 1 is not supported (2 or 3; re-convert the model)"));
    if (version_ > 0xffff) throw Error(cat(path, ": GGUF version ", version_, " (a big-endian file? only little-endian is read)"));
    throw Error(cat(path, ": GGUF version ", version_, " is not supported (2 or 3)"));
  }
  const uint64_t n_tensors = c.get<uint64_t>("tensor count"), n_kv = c.get<uint64_t>("metadata count");
  // A key is at least an 8-byte length + 4-byte type + 1 byte; a tensor info at least 8 + 4 + 8 + 4 + 8.
  if (n_kv > c.left() / 13) throw Error(cat(path, ": metadata count ", n_kv, " is larger than the file can hold"));
  if (n_tensors > c.left() / 32) throw Error(cat(path, ": tensor count ", n_tensors, " is larger than the file can hold"));

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.str(cat("metadata key #", i));
    uint32_t t = c.get<uint32_t>(cat("type of metadata '", key, "'"));
    if (!known_type(t)) throw Error(cat(path, ": metadata '", key, "' has unknown value type ", t));
    GgufValue v = read_value(c, GgufType(t), cat("metadata '", key, "'"), 0);
    if (meta_.count(key)) throw Error(cat(path, ": metadata '", key, "' appears twice"));
    keys_.push_back(key);
    meta_.emplace(std::move(key), std::move(v));
  }
  if (has("general.alignment")) {
    const GgufValue& a = value("general.alignment");
    if (a.type != GgufType::UINT32)
      throw Error(cat(path, ": metadata 'general.alignment' is ", a.type_str(), ", expected uint32"));
    uint64_t al = std::get<uint64_t>(a.v);
    if (al == 0 || (al & (al - 1)) != 0)
      throw Error(cat(path, ": metadata 'general.alignment' = ", al, " is not a power of two"));
    alignment_ = size_t(al);
  }

  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = c.str(cat("tensor name #", i));
    const std::string what = cat("tensor '", t.name, "'");
    uint32_t n_dims = c.get<uint32_t>(what + " n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      throw Error(cat(path, ": ", what, " has ", n_dims, " dimensions (1 to ", kMaxDims, " allowed)"));
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = c.get<uint64_t>(what + " dimension");
      if (ne > uint64_t(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(numel, ne, &numel) ||
          numel > uint64_t(std::numeric_limits<int64_t>::max()))
        throw Error(cat(path, ": ", what, " has dimensions whose product overflows"));
      t.ne.push_back(int64_t(ne));
    }
    uint32_t type = c.get<uint32_t>(what + " type");
    if (!qtype_known(type)) throw Error(cat(path, ": ", what, " has unknown tensor type ", type));
    t.type = QType(type);
    uint64_t off = c.get<uint64_t>(what + " offset");
    if (off % alignment_ != 0)
      throw Error(cat(path, ": ", what, " offset ", off, " is not a multiple of the alignment ", alignment_));
    const int64_t bs = qtype_block_size(t.type);
    if (t.ne[0] % bs != 0)
      throw Error(cat(path, ": ", what, " of type ", qtype_name(type), " has ", t.ne[0], " columns, not a multiple of its block size ", bs));
    t.numel = int64_t(numel);
    if (numel / uint64_t(bs) > c.size / size_t(qtype_block_bytes(t.type)))
      throw Error(cat(path, ": ", what, " (", shape_str(t.ne), " of ", qtype_name(type), ") is larger than the file"));
    t.nbytes = size_t(numel / uint64_t(bs)) * size_t(qtype_block_bytes(t.type));
    t.offset = size_t(off);  // relative for now
    for (int d = int(n_dims) - 1; d >= 0; --d) t.shape.push_back(t.ne[size_t(d)]);
    if (tindex_.count(t.name)) throw Error(cat(path, ": ", what, " appears twice"));
    tindex_[t.name] = tensors_.size();
    tensor_names_.push_back(t.name);
    tensors_.push_back(std::move(t));
  }

  // Tensor data starts at the next multiple of the alignment.
  const size_t data_start = (c.pos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_start > c.size)
    throw Error(cat(path, ": truncated file: tensor data would start at byte ", data_start, " of ", c.size));
  const size_t data_size = tensors_.empty() ? 0 : c.size - data_start;
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) {
    GgufTensor& t = tensors_[i];
    order[i] = i;
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      throw Error(cat(path, ": tensor '", t.name, "' data [", t.offset, ", ", t.offset + t.nbytes,
                      ") runs past the end of the file (", data_size, " bytes of tensor data)"));
    t.offset += data_start;
    t.data = map_->data() + t.offset;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensor &p = tensors_[order[k - 1]], &t = tensors_[order[k]];
    if (t.offset < p.offset + p.nbytes)
      throw Error(cat(path, ": tensor '", t.name, "' data overlaps tensor '", p.name, "'"));
  }
}

// ---------------------------------------------------------------------------------------------- metadata access

const GgufValue& GgufFile::value(const std::string& key) const {
  auto it = meta_.find(key);
  if (it == meta_.end()) throw Error(cat(path_, ": no metadata key '", key, "'"));
  return it->second;
}

namespace {

int64_t int_of(const std::string& path, const std::string& key, const GgufValue& v) {
  if (!v.is_integer()) throw Error(cat(path, ": metadata '", key, "' is ", v.type_str(), ", expected an integer"));
  if (auto* u = std::get_if<uint64_t>(&v.v)) {
    if (*u > uint64_t(std::numeric_limits<int64_t>::max()))
      throw Error(cat(path, ": metadata '", key, "' = ", *u, " is too large"));
    return int64_t(*u);
  }
  return std::get<int64_t>(v.v);
}

double float_of(const std::string& path, const std::string& key, const GgufValue& v) {
  if (!v.is_float()) throw Error(cat(path, ": metadata '", key, "' is ", v.type_str(), ", expected a float"));
  return std::get<double>(v.v);
}

const std::vector<GgufValue>& array_of(const std::string& path, const std::string& key, const GgufValue& v,
                                       const char* expected) {
  if (v.type != GgufType::ARRAY) throw Error(cat(path, ": metadata '", key, "' is ", v.type_str(), ", expected ", expected));
  return std::get<std::vector<GgufValue>>(v.v);
}

}  // namespace

int64_t GgufFile::get_int(const std::string& key) const { return int_of(path_, key, value(key)); }

uint32_t GgufFile::get_u32(const std::string& key) const {
  int64_t v = get_int(key);
  if (v < 0 || v > int64_t(std::numeric_limits<uint32_t>::max()))
    throw Error(cat(path_, ": metadata '", key, "' = ", v, " is out of range for uint32"));
  return uint32_t(v);
}

double GgufFile::get_float(const std::string& key) const { return float_of(path_, key, value(key)); }

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::BOOL) throw Error(cat(path_, ": metadata '", key, "' is ", v.type_str(), ", expected bool"));
  return std::get<bool>(v.v);
}

const std::string& GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::STRING) throw Error(cat(path_, ": metadata '", key, "' is ", v.type_str(), ", expected string"));
  return std::get<std::string>(v.v);
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = value(key);
  const auto& items = array_of(path_, key, v, "array of string");
  if (v.elem_type != GgufType::STRING)
    throw Error(cat(path_, ": metadata '", key, "' is ", v.type_str(), ", expected array of string"));
  std::vector<std::string> out;
  out.reserve(items.size());
  for (const auto& it : items) out.push_back(std::get<std::string>(it.v));
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = value(key);
  const auto& items = array_of(path_, key, v, "array of integers");
  GgufValue probe;
  probe.type = v.elem_type;
  if (!probe.is_integer()) throw Error(cat(path_, ": metadata '", key, "' is ", v.type_str(), ", expected array of integers"));
  std::vector<int64_t> out;
  out.reserve(items.size());
  for (const auto& it : items) out.push_back(int_of(path_, key, it));
  return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = value(key);
  const auto& items = array_of(path_, key, v, "array of floats");
  if (v.elem_type != GgufType::FLOAT32 && v.elem_type != GgufType::FLOAT64)
    throw Error(cat(path_, ": metadata '", key, "' is ", v.type_str(), ", expected array of floats"));
  std::vector<double> out;
  out.reserve(items.size());
  for (const auto& it : items) out.push_back(std::get<double>(it.v));
  return out;
}

int64_t GgufFile::int_or(const std::string& key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }
double GgufFile::float_or(const std::string& key, double fallback) const { return has(key) ? get_float(key) : fallback; }
std::string GgufFile::string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}
bool GgufFile::bool_or(const std::string& key, bool fallback) const { return has(key) ? get_bool(key) : fallback; }

// ---------------------------------------------------------------------------------------------- tensors

const GgufTensor& GgufFile::tensor(const std::string& name) const {
  auto it = tindex_.find(name);
  if (it == tindex_.end()) throw Error(cat(path_, ": no tensor '", name, "'"));
  return tensors_[it->second];
}

Tensor GgufFile::to_fp32(const std::string& name) const {
  const GgufTensor& t = tensor(name);
  if (t.type == QType::F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
    return Tensor::borrow(t.shape, reinterpret_cast<float*>(const_cast<uint8_t*>(t.data)), map_);
  Tensor out = Tensor::zeros(t.shape);  // (shape)
  float* y = out.data();
  switch (t.type) {
    case QType::I8: convert_ints<int8_t>(y, t.data, t.numel); break;
    case QType::I16: convert_ints<int16_t>(y, t.data, t.numel); break;
    case QType::I32: convert_ints<int32_t>(y, t.data, t.numel); break;
    case QType::I64: convert_ints<int64_t>(y, t.data, t.numel); break;
    case QType::F64: convert_ints<double>(y, t.data, t.numel); break;
    default: {
      const int64_t cols = t.ne[0], rows = cols ? t.numel / cols : 0;  // (rows, cols)
      dequantize_rows(t.type, t.data, y, rows, cols);
    }
  }
  return out;
}

Tensor GgufFile::to_fp32(const std::string& name, const Shape& expected) const {
  const GgufTensor& t = tensor(name);
  if (t.shape != expected)
    throw Error(cat(path_, ": tensor '", name, "' has shape ", shape_str(t.shape), ", expected ", shape_str(expected)));
  return to_fp32(name);
}

std::string gguf_value_json(const GgufValue& v, size_t max_items) {
  switch (v.type) {
    case GgufType::STRING: return json_quote(std::get<std::string>(v.v));
    case GgufType::BOOL: return std::get<bool>(v.v) ? "true" : "false";
    case GgufType::FLOAT32: case GgufType::FLOAT64: {
      const double d = std::get<double>(v.v);
      if (!std::isfinite(d)) return std::isnan(d) ? "\"nan\"" : d > 0 ? "\"inf\"" : "\"-inf\"";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);  // round-trips the double exactly
      return buf;
    }
    case GgufType::ARRAY: {
      const auto& items = std::get<std::vector<GgufValue>>(v.v);
      std::string out = "[";
      size_t n = max_items ? std::min(max_items, items.size()) : items.size();
      for (size_t i = 0; i < n; ++i) out += (i ? ", " : "") + gguf_value_json(items[i], max_items);
      if (n < items.size()) out += cat(n ? ", " : "", "\"... ", items.size() - n, " more\"");
      return out + "]";
    }
    default:
      if (auto* u = std::get_if<uint64_t>(&v.v)) return std::to_string(*u);
      return std::to_string(std::get<int64_t>(v.v));
  }
}

}  // namespace mnemo

#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "base/error.h"
#include "tensor/quant.h"

namespace mnemo {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors and mnemo's readers assume a little-endian host");

namespace {

struct DTypeInfo {
  DType t;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},       {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::I16, "I16", 2}, {DType::U16, "U16", 2}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},   {DType::U32, "U32", 4},     {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},   {DType::I64, "I64", 8},   {DType::U64, "U64", 8},
};

// The header is JSON text; the reference implementation caps it at 100 MB, and so do we (a corrupt length
// should fail here, not in a 2^60-byte allocation).
constexpr uint64_t kMaxHeader = 100u << 20;

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

template <typename T>
void convert(float* out, const uint8_t* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, in + size_t(i) * sizeof(T), sizeof(T));
    out[i] = float(v);
  }
}

// Halves at an odd address (only possible in a hand-made file): one at a time.
void convert_half(float* out, const uint8_t* in, int64_t n, float (*widen)(uint16_t)) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = widen(h);
  }
}

}  // namespace

const char* dtype_name(DType t) {
  for (auto& d : kDTypes)
    if (d.t == t) return d.name;
  return "?";
}

size_t dtype_size(DType t) {
  for (auto& d : kDTypes)
    if (d.t == t) return d.size;
  return 0;
}

bool parse_dtype(const std::string& name, DType* out) {
  for (auto& d : kDTypes)
    if (name == d.name) {
      *out = d.t;
      return true;
    }
  return false;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  map_ = std::make_shared<MappedFile>(path);
  const uint8_t* base = map_->data();
  const size_t size = map_->size();
  if (size < 8)
    throw Error(cat(path, ": truncated safetensors file: ", size, " bytes, shorter than the 8-byte header length"));
  uint64_t hlen = read_u64_le(base);
  if (hlen > size - 8)
    throw Error(cat(path, ": header length ", hlen, " runs past the end of the file (", size, " bytes)"));
  if (hlen > kMaxHeader) throw Error(cat(path, ": header length ", hlen, " exceeds the 100 MB limit"));
  if (hlen < 2) throw Error(cat(path, ": header length ", hlen, " is too short for a JSON object"));
  const std::string_view text(reinterpret_cast<const char*>(base + 8), size_t(hlen));
  if (text[0] != '{') throw Error(cat(path, ": malformed header: does not start with '{'"));
  Json header = Json::parse(text, cat(path, ": header"));
  if (!header.is_object()) throw Error(cat(path, ": malformed header: not a JSON object"));

  const size_t data_start = 8 + size_t(hlen), buffer = size - data_start;
  for (const auto& [name, info] : header.as_object()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw Error(cat(path, ": __metadata__ is not an object"));
      for (const auto& [k, v] : info.as_object()) {
        if (!v.is_string()) throw Error(cat(path, ": __metadata__ value '", k, "' is not a string"));
        metadata_[k] = v.as_string();
      }
      continue;
    }
    auto where = [&](const char* field) { return cat(path, ": tensor '", name, "' ", field); };
    if (index_.count(name)) throw Error(cat(path, ": tensor '", name, "' appears twice in the header"));
    if (!info.is_object()) throw Error(where("is not an object"));
    SafetensorsEntry e;
    e.name = name;
    const Json* dt = info.find("dtype");
    const Json* sh = info.find("shape");
    const Json* off = info.find("data_offsets");
    if (!dt || !dt->is_string()) throw Error(where("has no string 'dtype'"));
    if (!parse_dtype(dt->as_string(), &e.dtype)) throw Error(where(cat("has unknown dtype '", dt->as_string(), "'").c_str()));
    if (!sh || !sh->is_array()) throw Error(where("has no 'shape' array"));
    uint64_t numel = 1;
    for (const Json& d : sh->as_array()) {
      if (!d.is_number() || d.as_number() < 0 || d.as_number() != double(int64_t(d.as_number())))
        throw Error(where("has a shape entry that is not a non-negative integer"));
      int64_t v = int64_t(d.as_number());
      e.shape.push_back(v);
      if (__builtin_mul_overflow(numel, uint64_t(v), &numel)) throw Error(where("has a shape whose size overflows"));
    }
    if (!off || !off->is_array() || off->size() != 2) throw Error(where("has no 'data_offsets' pair"));
    uint64_t b = 0, en = 0;
    for (int i = 0; i < 2; ++i) {
      const Json& o = off->as_array()[size_t(i)];
      if (!o.is_number() || o.as_number() < 0 || o.as_number() != double(int64_t(o.as_number())))
        throw Error(where("has a data offset that is not a non-negative integer"));
      (i == 0 ? b : en) = uint64_t(o.as_number());
    }
    if (en < b) throw Error(where(cat("has data_offsets [", b, ", ", en, "] that end before they begin").c_str()));
    if (en > buffer)
      throw Error(where(cat("has data_offsets [", b, ", ", en, "] past the end of the data (", buffer, " bytes)").c_str()));
    uint64_t want;
    if (__builtin_mul_overflow(numel, uint64_t(dtype_size(e.dtype)), &want) || want != en - b)
      throw Error(where(cat("has shape ", shape_str(e.shape), " of ", dtype_name(e.dtype), " (", numel * dtype_size(e.dtype),
                            " bytes) but data_offsets [", b, ", ", en, "] hold ", en - b, " bytes").c_str()));
    e.offset = data_start + size_t(b);
    e.data = base + e.offset;
    e.nbytes = size_t(en - b);
    index_[name] = entries_.size();
    entries_.push_back(std::move(e));
  }

  // The buffer must be exactly tiled by the tensors: no overlaps, no gaps, nothing after the last one.
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.offset < b.offset; });
  size_t at = data_start;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const auto& e = entries_[i];
    if (e.offset < at)
      throw Error(cat(path, ": tensor '", e.name, "' data_offsets [", e.offset - data_start, ", ", e.offset + e.nbytes - data_start,
                      "] overlap the previous tensor '", entries_[i - 1].name, "'"));
    if (e.offset > at)
      throw Error(cat(path, ": tensor '", e.name, "' data_offsets begin at ", e.offset - data_start, ", leaving a gap after byte ",
                      at - data_start));
    at = e.offset + e.nbytes;
    index_[e.name] = i;
    names_.push_back(e.name);
  }
  if (at != size)
    throw Error(cat(path, ": ", size - at, " bytes after the last tensor are not covered by any data_offsets"));
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(cat(path_, ": no tensor '", name, "'"));
  return entries_[it->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  if (e.dtype == DType::F32 && reinterpret_cast<uintptr_t>(e.data) % alignof(float) == 0)
    return Tensor::borrow(e.shape, reinterpret_cast<float*>(const_cast<uint8_t*>(e.data)), map_);
  return tensor_copy(name);
}

Tensor SafetensorsFile::tensor(const std::string& name, const Shape& expected) const {
  const SafetensorsEntry& e = entry(name);
  if (e.shape != expected)
    throw Error(cat(path_, ": tensor '", name, "' has shape ", shape_str(e.shape), ", expected ", shape_str(expected)));
  return tensor(name);
}

Tensor SafetensorsFile::tensor_copy(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  Tensor t = Tensor::zeros(e.shape);  // (shape)
  float* out = t.data();
  const int64_t n = t.numel();
  const uint8_t* in = e.data;
  switch (e.dtype) {
    case DType::F32: std::memcpy(out, in, e.nbytes); break;
    case DType::F16:
      if (reinterpret_cast<uintptr_t>(in) % 2 == 0) fp16_to_fp32_row(out, reinterpret_cast<const uint16_t*>(in), n);
      else convert_half(out, in, n, fp16_to_fp32);
      break;
    case DType::BF16:
      if (reinterpret_cast<uintptr_t>(in) % 2 == 0) bf16_to_fp32_row(out, reinterpret_cast<const uint16_t*>(in), n);
      else convert_half(out, in, n, bf16_to_fp32);
      break;
    case DType::F64: convert<double>(out, in, n); break;
    case DType::I64: convert<int64_t>(out, in, n); break;
    case DType::U64: convert<uint64_t>(out, in, n); break;
    case DType::I32: convert<int32_t>(out, in, n); break;
    case DType::U32: convert<uint32_t>(out, in, n); break;
    case DType::I16: convert<int16_t>(out, in, n); break;
    case DType::U16: convert<uint16_t>(out, in, n); break;
    case DType::I8: convert<int8_t>(out, in, n); break;
    case DType::U8: convert<uint8_t>(out, in, n); break;
    case DType::BOOL:
      for (int64_t i = 0; i < n; ++i) out[i] = in[i] ? 1.0f : 0.0f;
      break;
    case DType::F8_E5M2:
    case DType::F8_E4M3:
      throw Error(cat(path_, ": tensor '", name, "' has dtype ", dtype_name(e.dtype), ", which mnemo does not convert to fp32"));
  }
  return t;
}

void save_safetensors(const std::string& path, const std::vector<SafetensorsItem>& items,
                      const std::map<std::string, std::string>& metadata) {
  // Validate and lay out: widest dtype first (stable, so equal widths keep the caller's order), which keeps every
  // tensor aligned to its element size because every size is a multiple of the next narrower one.
  std::set<std::string> seen;
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    order[i] = i;
    if (it.name.empty() || it.name == "__metadata__")
      throw Error(cat(path, ": cannot write a tensor named '", it.name, "'"));
    if (!seen.insert(it.name).second) throw Error(cat(path, ": tensor '", it.name, "' given twice"));
    if (it.tensor.defined()) {
      if (it.dtype != DType::F32 && it.dtype != DType::BF16 && it.dtype != DType::F16)
        throw Error(cat(path, ": tensor '", it.name, "': fp32 values can be written as F32, BF16 or F16, not ",
                        dtype_name(it.dtype)));
    } else if (uint64_t(shape_numel(it.shape)) * dtype_size(it.dtype) != it.bytes.size()) {
      throw Error(cat(path, ": tensor '", it.name, "': ", it.bytes.size(), " bytes do not hold shape ",
                      shape_str(it.shape), " of ", dtype_name(it.dtype)));
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return dtype_size(items[a].dtype) > dtype_size(items[b].dtype); });

  Json header = Json::object();
  if (!metadata.empty()) {
    Json m = Json::object();
    for (const auto& [k, v] : metadata) m[k] = Json(v);
    header["__metadata__"] = std::move(m);
  }
  size_t at = 0;
  for (size_t i : order) {
    const auto& it = items[i];
    const Shape& shape = it.tensor.defined() ? it.tensor.shape() : it.shape;
    size_t n = size_t(shape_numel(shape)) * dtype_size(it.dtype);
    Json s = Json::array();
    for (int64_t d : shape) s.push_back(Json(d));
    Json e = Json::object();
    e["dtype"] = Json(dtype_name(it.dtype));
    e["shape"] = std::move(s);
    e["data_offsets"] = Json(Json::Array{Json(at), Json(at + n)});
    header[it.name] = std::move(e);
    at += n;
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // the data buffer starts 8-byte aligned

  atomic_write(path, [&](std::ostream& out) {
    uint64_t hlen = text.size();
    out.write(reinterpret_cast<const char*>(&hlen), 8);
    out.write(text.data(), std::streamsize(text.size()));
    std::vector<uint16_t> half;
    for (size_t i : order) {
      const auto& it = items[i];
      if (!it.tensor.defined()) {
        out.write(it.bytes.data(), std::streamsize(it.bytes.size()));
      } else if (it.dtype == DType::F32) {
        out.write(reinterpret_cast<const char*>(it.tensor.data()), std::streamsize(it.tensor.numel() * 4));
      } else {
        half.resize(size_t(it.tensor.numel()));
        if (it.dtype == DType::BF16) fp32_to_bf16_row(half.data(), it.tensor.data(), it.tensor.numel());
        else fp32_to_fp16_row(half.data(), it.tensor.data(), it.tensor.numel());
        out.write(reinterpret_cast<const char*>(half.data()), std::streamsize(half.size() * 2));
      }
    }
  });
}

}  // namespace mnemo

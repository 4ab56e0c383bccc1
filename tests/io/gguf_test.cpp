// GGUF reader: small files written here by a tiny writer (every metadata type, several tensor types), the real
// SmolLM2 file, and malformed input (every truncation, random corruption, each field wrong in turn). Agreement of
// the dequantized tensors with llama.cpp's Python package is checked by tests/oracle/test_formats.py.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "base/error.h"
#include "base/file.h"
#include "tensor/quant.h"
#include "scratch.h"

using namespace mnemo;

namespace {

// A minimal GGUF writer for tests: append fields in file order.
struct Writer {
  std::string b;
  template <typename T>
  Writer& raw(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Writer& str(const std::string& s) {
    raw<uint64_t>(s.size());
    b += s;
    return *this;
  }
  Writer& key(const std::string& k, GgufType t) { return str(k).raw<uint32_t>(uint32_t(t)); }
  Writer& pad(size_t align) {
    b.append((align - b.size() % align) % align, '\0');
    return *this;
  }
};

struct TinyTensor {
  std::string name;
  QType type;
  std::vector<uint64_t> ne;
  std::string data;
};

// Header + the given metadata bytes (already encoded, n_kv entries) + tensors laid out at aligned offsets.
std::string build(uint32_t version, uint64_t n_kv, const std::string& kv, const std::vector<TinyTensor>& ts,
                  size_t align = 32) {
  Writer w;
  w.b = "GGUF";
  w.raw<uint32_t>(version).raw<uint64_t>(ts.size()).raw<uint64_t>(n_kv);
  w.b += kv;
  uint64_t off = 0;
  for (const auto& t : ts) {
    w.str(t.name).raw<uint32_t>(uint32_t(t.ne.size()));
    for (uint64_t d : t.ne) w.raw<uint64_t>(d);
    w.raw<uint32_t>(uint32_t(t.type)).raw<uint64_t>(off);
    off += (t.data.size() + align - 1) / align * align;
  }
  w.pad(align);
  for (size_t i = 0; i < ts.size(); ++i) {
    w.b += ts[i].data;
    if (i + 1 < ts.size()) w.pad(align);  // the file ends where the last tensor does
  }
  return w.b;
}

std::string bytes_of(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

std::string quantized(QType t, const std::vector<float>& v) {
  std::string out(size_t(row_bytes(t, int64_t(v.size()))), '\0');
  quantize_row(t, v.data(), out.data(), int64_t(v.size()));
  return out;
}

// Every metadata type, including nested arrays of strings.
std::string all_kinds_kv(uint64_t* n) {
  Writer w;
  w.key("u8", GgufType::UINT8).raw<uint8_t>(200);
  w.key("i8", GgufType::INT8).raw<int8_t>(-100);
  w.key("u16", GgufType::UINT16).raw<uint16_t>(60000);
  w.key("i16", GgufType::INT16).raw<int16_t>(-30000);
  w.key("u32", GgufType::UINT32).raw<uint32_t>(4000000000u);
  w.key("i32", GgufType::INT32).raw<int32_t>(-2000000000);
  w.key("f32", GgufType::FLOAT32).raw<float>(0.25f);
  w.key("yes", GgufType::BOOL).raw<uint8_t>(1);
  w.key("name", GgufType::STRING).str("tiny \xe2\x9c\x93");
  w.key("u64", GgufType::UINT64).raw<uint64_t>(1ull << 60);
  w.key("i64", GgufType::INT64).raw<int64_t>(-(1ll << 50));
  w.key("f64", GgufType::FLOAT64).raw<double>(1e-300);
  w.key("ints", GgufType::ARRAY).raw<uint32_t>(uint32_t(GgufType::INT32)).raw<uint64_t>(3);
  w.raw<int32_t>(1).raw<int32_t>(-2).raw<int32_t>(3);
  w.key("floats", GgufType::ARRAY).raw<uint32_t>(uint32_t(GgufType::FLOAT32)).raw<uint64_t>(2).raw<float>(1.5f).raw<float>(-2.0f);
  w.key("words", GgufType::ARRAY).raw<uint32_t>(uint32_t(GgufType::STRING)).raw<uint64_t>(2).str("a").str("");
  w.key("nested", GgufType::ARRAY).raw<uint32_t>(uint32_t(GgufType::ARRAY)).raw<uint64_t>(2);
  w.raw<uint32_t>(uint32_t(GgufType::STRING)).raw<uint64_t>(1).str("x");
  w.raw<uint32_t>(uint32_t(GgufType::STRING)).raw<uint64_t>(2).str("y").str("z");
  w.key("empty", GgufType::ARRAY).raw<uint32_t>(uint32_t(GgufType::UINT8)).raw<uint64_t>(0);
  w.key("general.alignment", GgufType::UINT32).raw<uint32_t>(32);
  *n = 18;
  return w.b;
}

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * float(i) + 0.1f);
  return v;
}

std::vector<TinyTensor> tiny_tensors() {
  std::vector<TinyTensor> ts;
  ts.push_back({"w.f32", QType::F32, {3, 2}, bytes_of({1, 2, 3, 4, 5, 6})});  // (2, 3)
  ts.push_back({"w.q8", QType::Q8_0, {64, 3}, quantized(QType::Q8_0, ramp(192, 1.0f))});
  ts.push_back({"w.q41", QType::Q4_1, {32, 2, 2}, quantized(QType::Q4_1, ramp(128, 0.5f))});
  std::string f16(32 * 2, '\0');
  for (int i = 0; i < 32; ++i) {
    uint16_t h = fp32_to_fp16(float(i) / 8);
    std::memcpy(&f16[size_t(i) * 2], &h, 2);
  }
  ts.push_back({"w.f16", QType::F16, {32}, f16});
  std::string ids(4 * 4, '\0');
  int32_t v[4] = {7, -1, 0, 42};
  std::memcpy(ids.data(), v, 16);
  ts.push_back({"ids", QType::I32, {4}, ids});
  return ts;
}

// Plain write (no fsync: the loops below write thousands of scratch files).
std::string write(const std::string& name, const std::string& bytes) {
  std::string p = join_path(scratch_dir(), name);
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  return p;
}

void expect_error(const std::string& path, std::initializer_list<std::string> pieces) {
  try {
    GgufFile f(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

template <typename F>
void expect_access_error(F fn, std::initializer_list<std::string> pieces) {
  try {
    fn();
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace

TEST(Gguf, ReadsEveryMetadataTypeAndTensor) {
  uint64_t n_kv;
  std::string kv = all_kinds_kv(&n_kv);
  for (uint32_t version : {2u, 3u}) {
    std::string p = write("all.gguf", build(version, n_kv, kv, tiny_tensors()));
    GgufFile f(p);
    EXPECT_EQ(f.version(), version);
    EXPECT_EQ(f.keys().size(), n_kv);
    EXPECT_EQ(f.keys()[0], "u8");
    EXPECT_EQ(f.get_int("u8"), 200);
    EXPECT_EQ(f.get_int("i8"), -100);
    EXPECT_EQ(f.get_int("u16"), 60000);
    EXPECT_EQ(f.get_int("i16"), -30000);
    EXPECT_EQ(f.get_u32("u32"), 4000000000u);
    EXPECT_EQ(f.get_int("i32"), -2000000000);
    EXPECT_EQ(f.get_float("f32"), 0.25);
    EXPECT_TRUE(f.get_bool("yes"));
    EXPECT_EQ(f.get_string("name"), "tiny \xe2\x9c\x93");
    EXPECT_EQ(f.get_int("u64"), int64_t(1ull << 60));
    EXPECT_EQ(f.get_int("i64"), -(1ll << 50));
    EXPECT_EQ(f.get_float("f64"), 1e-300);
    EXPECT_EQ(f.get_int_array("ints"), (std::vector<int64_t>{1, -2, 3}));
    EXPECT_EQ(f.get_float_array("floats"), (std::vector<double>{1.5, -2.0}));
    EXPECT_EQ(f.get_string_array("words"), (std::vector<std::string>{"a", ""}));
    EXPECT_EQ(f.value("nested").type_str(), "array of array");
    EXPECT_EQ(gguf_value_json(f.value("nested")), "[[\"x\"], [\"y\", \"z\"]]");
    EXPECT_EQ(gguf_value_json(f.value("ints"), 2), "[1, -2, \"... 1 more\"]");
    EXPECT_TRUE(f.get_int_array("empty").empty());
    EXPECT_EQ(f.int_or("absent", 9), 9);
    EXPECT_EQ(f.string_or("absent", "d"), "d");

    ASSERT_EQ(f.tensor_names().size(), 5u);
    EXPECT_EQ(f.tensor("w.q41").shape, (Shape{2, 2, 32}));
    EXPECT_EQ(f.tensor("w.q41").ne, (std::vector<int64_t>{32, 2, 2}));
    EXPECT_EQ(f.to_fp32("w.f32", {2, 3}).to_vector(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
    Tensor q8 = f.to_fp32("w.q8", {3, 64});
    std::vector<float> want(192);
    dequantize_row(QType::Q8_0, f.tensor("w.q8").data, want.data(), 192);
    EXPECT_EQ(q8.to_vector(), want);
    auto r = ramp(192, 1.0f);
    for (int i = 0; i < 192; ++i) EXPECT_NEAR(q8[i], r[size_t(i)], 0.01f);
    Tensor q41 = f.to_fp32("w.q41");
    auto r2 = ramp(128, 0.5f);
    for (int i = 0; i < 128; ++i) EXPECT_NEAR(q41[i], r2[size_t(i)], 0.04f);
    Tensor h = f.to_fp32("w.f16");
    for (int i = 0; i < 32; ++i) EXPECT_EQ(h[i], float(i) / 8);
    EXPECT_EQ(f.to_fp32("ids").to_vector(), (std::vector<float>{7, -1, 0, 42}));
    EXPECT_EQ(f.tensor("w.f32").offset % 32, 0u);
  }
}

TEST(Gguf, WrongTypesAndMissingKeysNameFileAndKey) {
  uint64_t n_kv;
  std::string kv = all_kinds_kv(&n_kv);
  std::string p = write("types.gguf", build(3, n_kv, kv, {}));
  GgufFile f(p);
  expect_access_error([&] { f.get_int("name"); }, {p, "'name'", "is string", "expected an integer"});
  expect_access_error([&] { f.get_string("u32"); }, {p, "'u32'", "is uint32", "expected string"});
  expect_access_error([&] { f.get_float("i32"); }, {"'i32'", "expected a float"});
  expect_access_error([&] { f.get_bool("u8"); }, {"'u8'", "expected bool"});
  expect_access_error([&] { f.get_string_array("ints"); }, {"'ints'", "array of int32", "expected array of string"});
  expect_access_error([&] { f.get_int_array("words"); }, {"'words'", "array of string"});
  expect_access_error([&] { f.get_float_array("name"); }, {"'name'", "expected array of floats"});
  expect_access_error([&] { f.get_u32("i8"); }, {"'i8'", "out of range for uint32"});
  expect_access_error([&] { f.get_int("missing.key"); }, {p, "no metadata key 'missing.key'"});
  expect_access_error([&] { f.string_or("u8", "x"); }, {"'u8'", "expected string"});
  expect_access_error([&] { f.tensor("nope"); }, {p, "no tensor 'nope'"});
}

TEST(Gguf, EveryTruncationIsAnErrorNeverACrash) {
  uint64_t n_kv;
  std::string kv = all_kinds_kv(&n_kv);
  const std::string full = build(3, n_kv, kv, tiny_tensors());
  { GgufFile ok(write("full.gguf", full)); }
  for (size_t n = 0; n < full.size(); ++n) {
    std::string p = write("cut.gguf", full.substr(0, n));
    EXPECT_THROW(GgufFile f(p), Error) << "prefix of " << n << " bytes";
  }
  expect_error(write("cut.gguf", full.substr(0, 30)), {"cut.gguf", "metadata count 18 is larger than the file"});
  expect_error(write("cut.gguf", full.substr(0, 300)), {"cut.gguf", "metadata 'ints'", "past the end"});
  expect_error(write("cut.gguf", full.substr(0, 262)), {"cut.gguf", "truncated", "metadata key #12"});
  expect_error(write("cut.gguf", full.substr(0, full.size() - 10)), {"cut.gguf", "'ids'", "past the end"});
}

TEST(Gguf, RandomCorruptionIsAnErrorOrALoadNeverACrash) {
  uint64_t n_kv;
  std::string kv = all_kinds_kv(&n_kv);
  const std::string full = build(3, n_kv, kv, tiny_tensors());
  std::mt19937 gen(1);
  const std::string p = join_path(scratch_dir(), "fuzz.gguf");
  int loaded = 0, errors = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string b = full;
    // Corrupt the header region (metadata and tensor infos), where lengths and counts live.
    for (int k = 0; k < 3; ++k) b[gen() % 700] = char(gen());
    write("fuzz.gguf", b);
    try {
      GgufFile f(p);
      for (const auto& name : f.tensor_names()) {
        Tensor t = f.to_fp32(name);  // whatever loaded must be readable within the mapping
        (void)t;
      }
      ++loaded;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_EQ(loaded + errors, 400);
}

TEST(Gguf, BadFieldsGiveOneLineErrorsNamingTheField) {
  Writer align_kv;
  align_kv.key("general.alignment", GgufType::UINT32).raw<uint32_t>(32);
  std::vector<TinyTensor> one = {{"w", QType::F32, {4}, bytes_of({1, 2, 3, 4})}};

  expect_error(write("magic.gguf", "GGML" + build(3, 0, "", {}).substr(4)), {"magic.gguf", "not a GGUF file"});
  expect_error(write("v1.gguf", build(1, 0, "", {})), {"v1.gguf", "version 1"});
  expect_error(write("v9.gguf", build(9, 0, "", {})), {"v9.gguf", "version 9"});
  std::string be = build(3, 0, "", {});
  uint32_t swapped = 0x03000000;
  std::memcpy(&be[4], &swapped, 4);
  expect_error(write("be.gguf", be), {"be.gguf", "big-endian"});

  // Unknown tensor type.
  std::string bad_type = build(3, 0, "", one);
  size_t type_at = 4 + 4 + 8 + 8 + 8 + 1 + 4 + 8;  // after magic, version, counts, name "w", n_dims, ne[0]
  uint32_t t42 = 42;
  std::memcpy(&bad_type[type_at], &t42, 4);
  expect_error(write("type.gguf", bad_type), {"type.gguf", "tensor 'w'", "unknown tensor type 42"});

  // Offset past the end, and not aligned.
  std::string far = build(3, 0, "", one);
  uint64_t off = 1 << 20;
  std::memcpy(&far[type_at + 4], &off, 8);
  expect_error(write("offset.gguf", far), {"offset.gguf", "tensor 'w'", "past the end"});
  uint64_t odd = 4;
  std::memcpy(&far[type_at + 4], &odd, 8);
  expect_error(write("unaligned.gguf", far), {"unaligned.gguf", "tensor 'w'", "not a multiple of the alignment"});

  // Overlapping tensors.
  std::vector<TinyTensor> two = {{"a", QType::F32, {8}, bytes_of(ramp(8, 1))}, {"b", QType::F32, {8}, bytes_of(ramp(8, 1))}};
  std::string overlap = build(3, 0, "", two);
  size_t b_off_at = 4 + 4 + 8 + 8 + (8 + 1 + 4 + 8 + 4 + 8) + (8 + 1 + 4 + 8 + 4);
  uint64_t zero = 0;
  std::memcpy(&overlap[b_off_at], &zero, 8);
  expect_error(write("overlap.gguf", overlap), {"overlap.gguf", "overlaps"});

  // Block size: a Q8_0 tensor with 40 columns.
  expect_error(write("block.gguf", build(3, 0, "", {{"q", QType::Q8_0, {40}, std::string(34 * 2, '\0')}})),
               {"block.gguf", "tensor 'q'", "block size 32"});
  // Too many dimensions.
  expect_error(write("dims.gguf", build(3, 0, "", {{"d", QType::F32, {1, 1, 1, 1, 1}, bytes_of({1})}})),
               {"dims.gguf", "tensor 'd'", "5 dimensions"});
  // Duplicate tensor names and keys.
  expect_error(write("dupt.gguf", build(3, 0, "", {one[0], one[0]})), {"dupt.gguf", "'w'", "twice"});
  Writer dup;
  dup.key("k", GgufType::UINT8).raw<uint8_t>(1).key("k", GgufType::UINT8).raw<uint8_t>(2);
  expect_error(write("dupk.gguf", build(3, 2, dup.b, {})), {"dupk.gguf", "'k'", "twice"});
  // Alignment of the wrong type / not a power of two.
  Writer al;
  al.key("general.alignment", GgufType::STRING).str("32");
  expect_error(write("al.gguf", build(3, 1, al.b, {})), {"al.gguf", "general.alignment", "is string"});
  Writer al3;
  al3.key("general.alignment", GgufType::UINT32).raw<uint32_t>(24);
  expect_error(write("al3.gguf", build(3, 1, al3.b, {})), {"al3.gguf", "power of two"});
  // Metadata: unknown value type, bad bool, string longer than the file, huge array count, deep nesting.
  Writer vt;
  vt.key("k", GgufType(77)).raw<uint8_t>(0);
  expect_error(write("vt.gguf", build(3, 1, vt.b, {})), {"vt.gguf", "'k'", "unknown value type 77"});
  Writer bb;
  bb.key("flag", GgufType::BOOL).raw<uint8_t>(7);
  expect_error(write("bool.gguf", build(3, 1, bb.b, {})), {"bool.gguf", "'flag'", "bool value 7"});
  Writer ls;
  ls.key("s", GgufType::STRING).raw<uint64_t>(1ull << 40);
  expect_error(write("str.gguf", build(3, 1, ls.b, {})), {"str.gguf", "'s'", "truncated"});
  Writer big;
  big.key("arr", GgufType::ARRAY).raw<uint32_t>(uint32_t(GgufType::UINT64)).raw<uint64_t>(1ull << 59);
  expect_error(write("arr.gguf", build(3, 1, big.b, {})), {"arr.gguf", "'arr'", "past the end"});
  Writer deep;
  deep.key("deep", GgufType::ARRAY);
  for (int i = 0; i < 40; ++i) deep.raw<uint32_t>(uint32_t(GgufType::ARRAY)).raw<uint64_t>(1);
  expect_error(write("deep.gguf", build(3, 1, deep.b, {})), {"deep.gguf", "'deep'", "nested"});
  // A metadata count the file cannot hold.
  expect_error(write("count.gguf", build(3, 1ull << 40, "", {})), {"count.gguf", "metadata count"});
  // Shape mismatch on access names the tensor.
  GgufFile f(write("ok.gguf", build(3, 1, align_kv.b, one)));
  expect_access_error([&] { f.to_fp32("w", {2, 2}); }, {"ok.gguf", "'w' has shape [4], expected [2, 2]"});
}

TEST(Gguf, ReadsSmolLM2) {
  std::string p = std::string(MNEMO_DATA_DIR) + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!file_exists(p)) GTEST_SKIP() << p << " not present (scripts/setup fetches it)";
  GgufFile f(p);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u32("llama.block_count"), 30u);
  EXPECT_EQ(f.get_u32("llama.embedding_length"), 576u);
  EXPECT_EQ(f.get_u32("llama.attention.head_count"), 9u);
  EXPECT_EQ(f.get_u32("llama.attention.head_count_kv"), 3u);
  EXPECT_NEAR(f.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type").size(), 49152u);
  EXPECT_EQ(f.tensor_names().size(), 272u);
  const GgufTensor& emb = f.tensor("token_embd.weight");
  EXPECT_EQ(emb.type, QType::Q8_0);
  EXPECT_EQ(emb.shape, (Shape{49152, 576}));
  EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").type, QType::Q4_1);
  EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").shape, (Shape{576, 1536}));
  Tensor norm = f.to_fp32("blk.0.attn_norm.weight", {576});
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(norm.data()), f.tensor("blk.0.attn_norm.weight").data);  // borrowed
  Tensor down = f.to_fp32("blk.0.ffn_down.weight", {576, 1536});
  double s = 0;
  for (int64_t i = 0; i < down.numel(); ++i) s += std::fabs(down[i]);
  EXPECT_TRUE(std::isfinite(s));
  EXPECT_GT(s / double(down.numel()), 1e-3);

  // The 8-bit-x matvec against the fp32-x one on the real weights (docs/formats.md quotes these numbers): x is a
  // fixed pseudo-random normal vector; relative error = ||y_q8x - y|| / ||y||.
  std::mt19937 gen(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const char* name : {"blk.0.ffn_down.weight", "blk.0.attn_q.weight", "blk.0.ffn_up.weight", "token_embd.weight"}) {
    const GgufTensor& t = f.tensor(name);
    const int64_t rows = t.shape[0], cols = t.shape[1];
    std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows)), yq(static_cast<size_t>(rows));
    for (auto& v : x) v = normal(gen);
    quant_matvec(t.type, y.data(), t.data, x.data(), rows, cols);
    Q8Vector xq;
    quantize_q8_vector(x.data(), cols, &xq);
    quant_matvec_q8(t.type, yq.data(), t.data, xq, rows);
    double num = 0, den = 0;
    for (int64_t r = 0; r < rows; ++r) {
      num += double(yq[size_t(r)] - y[size_t(r)]) * (yq[size_t(r)] - y[size_t(r)]);
      den += double(y[size_t(r)]) * y[size_t(r)];
    }
    const double rel = std::sqrt(num / den);
    std::printf("q8x relative error %-24s %-5s %.3e\n", name, qtype_name(uint32_t(t.type)), rel);
    EXPECT_LT(rel, 0.02) << name;
  }
}

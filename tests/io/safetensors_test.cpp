#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "tensor/quant.h"
#include "scratch.h"

using namespace mnemo;

namespace {

// A file made of an explicit header text and data bytes (for the malformed-input tests).
std::string write_raw(const std::string& name, const std::string& header, const std::string& data,
                      int64_t header_len_override = -1) {
  std::string p = join_path(scratch_dir(), name);
  std::string bytes(8, '\0');
  uint64_t n = header_len_override >= 0 ? uint64_t(header_len_override) : header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header + data;
  atomic_write(p, bytes);
  return p;
}

// Expect an Error whose message contains every piece.
void expect_error(const std::string& path, std::initializer_list<std::string> pieces) {
  try {
    SafetensorsFile f(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace

TEST(Safetensors, RoundTripFloatHalfAndRawTensorsWithMetadata) {
  std::string p = join_path(scratch_dir(), "rt.safetensors");
  Tensor a = Tensor::from({2, 3}, {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, -7.0f});  // (2, 3)
  Tensor b = Tensor::from({5}, {0.1f, 0.2f, 0.3f, -1e30f, 65504.0f});          // (5): stored as BF16
  Tensor c = Tensor::from({3}, {0.1f, 1e-6f, -3.0f});                            // (3): stored as F16
  int64_t ids[4] = {1, -2, 1ll << 40, 7};
  std::vector<SafetensorsItem> items;
  items.emplace_back("b.half", b, DType::BF16);
  items.emplace_back("a", a);
  items.emplace_back("c", c, DType::F16);
  items.push_back(SafetensorsItem::raw("ids", DType::I64, {2, 2}, std::string(reinterpret_cast<char*>(ids), 32)));
  save_safetensors(p, items, {{"format", "pt"}, {"step", "12"}});

  SafetensorsFile f(p);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("step"), "12");
  ASSERT_EQ(f.names().size(), 4u);
  EXPECT_EQ(f.names()[0], "ids");  // widest dtype first
  EXPECT_EQ(f.entry("a").dtype, DType::F32);

  Tensor ra = f.tensor("a", {2, 3});
  EXPECT_EQ(ra.to_vector(), a.to_vector());
  // F32 is borrowed from the mapping, not copied.
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(ra.data()), f.entry("a").data);
  EXPECT_EQ(f.entry("a").offset % 4, 0u);

  Tensor rb = f.tensor("b.half");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(rb[i], bf16_to_fp32(fp32_to_bf16(b[i])));
  EXPECT_NEAR(rb[0], 0.1f, 1e-3f);
  Tensor rc = f.tensor("c");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rc[i], fp16_to_fp32(fp32_to_fp16(c[i])));
  Tensor rid = f.tensor("ids");
  EXPECT_EQ(rid.shape(), (Shape{2, 2}));
  EXPECT_EQ(rid[2], float(1ll << 40));
  EXPECT_EQ(std::memcmp(f.entry("ids").data, ids, 32), 0);

  // Header length + 8 is a multiple of 8, as the format asks.
  std::string bytes = read_file(p);
  uint64_t hlen;
  std::memcpy(&hlen, bytes.data(), 8);
  EXPECT_EQ((8 + hlen) % 8, 0u);

  // The tensor keeps the mapping alive after the file object is gone.
  Tensor keep;
  {
    SafetensorsFile g(p);
    keep = g.tensor("a");
  }
  EXPECT_EQ(keep[2], 3.25f);
  Tensor copy = f.tensor_copy("a");
  copy[0] = 9.0f;  // fresh storage is writable
  EXPECT_EQ(f.tensor("a")[0], 1.5f);
}

TEST(Safetensors, EmptyAndScalarTensors) {
  std::string p = join_path(scratch_dir(), "edge.safetensors");
  save_safetensors(p, {SafetensorsItem("empty", Tensor::zeros({0, 4})), SafetensorsItem("scalar", Tensor::from({}, {2.5f}))});
  SafetensorsFile f(p);
  EXPECT_EQ(f.tensor("empty").numel(), 0);
  EXPECT_EQ(f.tensor("scalar").shape(), Shape{});
  EXPECT_EQ(f.tensor("scalar")[0], 2.5f);
  EXPECT_TRUE(f.metadata().empty());
}

TEST(Safetensors, HalfConversionsAreExactAndRoundToNearestEven) {
  // Every fp16 bit pattern round-trips through fp32 (NaNs stay NaN).
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = fp16_to_fp32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
  }
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // ties to even -> inf
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie, even stays
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even zero
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(3.0f, -8)), 0x3f82);  // tie, rounds up to even
  // The vector row converters agree with the scalar ones.
  std::vector<uint16_t> h(37);
  for (size_t i = 0; i < h.size(); ++i) h[i] = uint16_t(i * 1777 + 3);
  std::vector<float> v(h.size());
  fp16_to_fp32_row(v.data(), h.data(), int64_t(h.size()));
  for (size_t i = 0; i < h.size(); ++i)
    if (!std::isnan(v[i])) { EXPECT_EQ(v[i], fp16_to_fp32(h[i])); }
  bf16_to_fp32_row(v.data(), h.data(), int64_t(h.size()));
  for (size_t i = 0; i < h.size(); ++i)
    if (!std::isnan(v[i])) { EXPECT_EQ(v[i], bf16_to_fp32(h[i])); }
}

TEST(Safetensors, WriterRejectsBadItems) {
  std::string p = join_path(scratch_dir(), "bad_write.safetensors");
  EXPECT_THROW(save_safetensors(p, {SafetensorsItem("x", Tensor::zeros({2})), SafetensorsItem("x", Tensor::zeros({2}))}), Error);
  EXPECT_THROW(save_safetensors(p, {SafetensorsItem("__metadata__", Tensor::zeros({2}))}), Error);
  EXPECT_THROW(save_safetensors(p, {SafetensorsItem::raw("r", DType::I32, {3}, std::string(8, '\0'))}), Error);
  EXPECT_FALSE(file_exists(p));
}

TEST(Safetensors, MalformedFilesGiveOneLineErrorsNamingFileAndTensor) {
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string data(8, '\0');
  // Sanity: the well-formed version loads.
  SafetensorsFile good(write_raw("good.safetensors", ok, data));
  EXPECT_EQ(good.tensor("w").numel(), 2);

  std::string p = join_path(scratch_dir(), "tiny.safetensors");
  atomic_write(p, std::string("abc"));
  expect_error(p, {p, "truncated"});
  expect_error(write_raw("hlen.safetensors", ok, data, 1000), {"hlen.safetensors", "header length 1000", "past the end"});
  expect_error(write_raw("json.safetensors", R"({"w":{"dtype":"F32",)", data), {"json.safetensors", "header"});
  expect_error(write_raw("notobj.safetensors", "[1,2]", data), {"notobj.safetensors"});
  expect_error(write_raw("dtype.safetensors", R"({"w":{"dtype":"F42","shape":[2],"data_offsets":[0,8]}})", data),
               {"dtype.safetensors", "'w'", "unknown dtype 'F42'"});
  expect_error(write_raw("size.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data),
               {"size.safetensors", "'w'", "[3]", "8 bytes"});
  expect_error(write_raw("range.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data),
               {"range.safetensors", "'w'", "past the end"});
  expect_error(write_raw("neg.safetensors", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data),
               {"neg.safetensors", "'w'", "shape"});
  expect_error(write_raw("order.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data),
               {"order.safetensors", "'w'", "end before"});
  expect_error(write_raw("overlap.safetensors",
                         R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         data),
               {"overlap.safetensors", "'b'", "overlap", "'a'"});
  expect_error(write_raw("gap.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data),
               {"gap.safetensors", "'w'", "gap"});
  expect_error(write_raw("tail.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data),
               {"tail.safetensors", "4 bytes after the last tensor"});
  expect_error(write_raw("nooff.safetensors", R"({"w":{"dtype":"F32","shape":[2]}})", data),
               {"nooff.safetensors", "'w'", "data_offsets"});
  expect_error(write_raw("meta.safetensors", R"({"__metadata__":{"a":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data),
               {"meta.safetensors", "__metadata__", "'a'"});
  expect_error(write_raw("dup.safetensors",
                         R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         data),
               {"dup.safetensors", "'w'", "twice"});

  // Asking for a missing tensor or the wrong shape names both.
  try {
    good.tensor("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor 'nope'"), std::string::npos);
  }
  try {
    good.tensor("w", {3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'w' has shape [2], expected [3]"), std::string::npos) << e.what();
  }
  expect_error(join_path(scratch_dir(), "missing.safetensors"), {"missing.safetensors", "cannot open"});
}

TEST(Safetensors, F8TensorsAreRefusedByTheFp32Helper) {
  SafetensorsFile f(write_raw("f8.safetensors", R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", std::string(8, '\0')));
  EXPECT_EQ(f.entry("w").nbytes, 8u);
  EXPECT_THROW(f.tensor("w"), Error);
}

TEST(Safetensors, ReadsTheMiniLMCheckpoint) {
  std::string p = std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384/model.safetensors";
  if (!file_exists(p)) GTEST_SKIP() << p << " not present (scripts/setup fetches it)";
  SafetensorsFile f(p);
  EXPECT_GT(f.names().size(), 90u);
  ASSERT_TRUE(f.contains("embeddings.word_embeddings.weight"));
  Tensor w = f.tensor("embeddings.word_embeddings.weight", {30522, 384});
  double s = 0;
  for (int64_t i = 0; i < w.numel(); ++i) s += std::fabs(w[i]);
  EXPECT_GT(s, 0.0);
  EXPECT_TRUE(std::isfinite(s));
}

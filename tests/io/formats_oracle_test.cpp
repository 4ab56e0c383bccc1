// Drivers for tests/oracle/test_formats.py, which compares mnemo's readers and writers with the Python packages
// that define the formats (gguf = llama.cpp's own reader, safetensors = Hugging Face's). Each test here runs only
// when the oracle sets its environment variables, and is skipped (shown as such) in a plain test run:
//   MNEMO_ORACLE_GGUF=IN.gguf MNEMO_ORACLE_OUT=DIR: writes DIR/gguf_meta.json (metadata with types, tensor table)
//     and DIR/gguf_tensors.safetensors (every tensor dequantized to fp32 by mnemo);
//   MNEMO_ORACLE_ST=IN.safetensors MNEMO_ORACLE_OUT=DIR: reads IN and writes DIR/st_f32.safetensors (every tensor
//     as fp32, metadata copied) and DIR/st_bf16.safetensors (the float tensors as BF16).
#include <gtest/gtest.h>

#include <cstdlib>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "io/gguf.h"
#include "io/safetensors.h"

using namespace mnemo;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

TEST(FormatsOracle, DumpGguf) {
  const std::string in = env("MNEMO_ORACLE_GGUF"), out = env("MNEMO_ORACLE_OUT");
  if (in.empty() || out.empty()) GTEST_SKIP() << "run by tests/oracle/test_formats.py";
  GgufFile f(in);
  std::string meta = cat("{\"version\": ", f.version(), ", \"alignment\": ", f.alignment(), ", \"metadata\": {");
  for (size_t i = 0; i < f.keys().size(); ++i) {
    const GgufValue& v = f.value(f.keys()[i]);
    meta += cat(i ? ", " : "", json_quote(f.keys()[i]), ": {\"type\": ", json_quote(v.type_str()),
                ", \"value\": ", gguf_value_json(v), "}");
  }
  meta += "}, \"tensors\": [";
  std::vector<SafetensorsItem> items;
  for (size_t i = 0; i < f.tensor_names().size(); ++i) {
    const GgufTensor& t = f.tensor(f.tensor_names()[i]);
    Json shape = Json::array();
    for (int64_t d : t.shape) shape.push_back(Json(d));
    meta += cat(i ? ", " : "", "{\"name\": ", json_quote(t.name), ", \"type\": ", json_quote(qtype_name(uint32_t(t.type))),
                ", \"shape\": ", shape.dump(), ", \"offset\": ", t.offset, "}");
    items.emplace_back(t.name, f.to_fp32(t.name));
  }
  meta += "]}\n";
  atomic_write(join_path(out, "gguf_meta.json"), meta);
  save_safetensors(join_path(out, "gguf_tensors.safetensors"), items, {{"source", in}});
}

TEST(FormatsOracle, RewriteSafetensors) {
  const std::string in = env("MNEMO_ORACLE_ST"), out = env("MNEMO_ORACLE_OUT");
  if (in.empty() || out.empty()) GTEST_SKIP() << "run by tests/oracle/test_formats.py";
  SafetensorsFile f(in);
  std::vector<SafetensorsItem> f32, bf16;
  for (const auto& name : f.names()) {
    Tensor t = f.tensor(name);
    f32.emplace_back(name, t);
    const DType d = f.entry(name).dtype;
    if (d == DType::F32 || d == DType::F16 || d == DType::BF16 || d == DType::F64) bf16.emplace_back(name, t, DType::BF16);
  }
  save_safetensors(join_path(out, "st_f32.safetensors"), f32, f.metadata());
  save_safetensors(join_path(out, "st_bf16.safetensors"), bf16, f.metadata());
}

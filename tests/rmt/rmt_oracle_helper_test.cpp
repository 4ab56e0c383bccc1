// Helper for tests/oracle/test_rmt.py (not a check by itself): when MNEMO_RMT_ORACLE=DIR is set, load the RMT model
// DIR/model and the batch DIR/batch.json ({"B","S","L","text": (S,B,L), "lengths": (S,B), "labels": (B),
// "bptt_depth"}), run the forward and backward pass, and write DIR/grads.safetensors: "loss" (1), "logits"
// (B, labels) and every parameter's gradient under its name. The Python test compares them with PyTorch.
#include <gtest/gtest.h>

#include <cstdlib>

#include "base/file.h"
#include "base/json.h"
#include "io/safetensors.h"
#include "memory/rmt.h"
#include "memory/rmt_dir.h"

using namespace mnemo;

TEST(RmtOracle, DumpGradients) {
  const char* dir = std::getenv("MNEMO_RMT_ORACLE");
  if (!dir) GTEST_SKIP() << "helper for tests/oracle/test_rmt.py (set MNEMO_RMT_ORACLE)";
  auto model = load_rmt(join_path(dir, "model"));
  Json j = Json::parse(read_file(join_path(dir, "batch.json")));
  RmtBatch b;
  b.B = j["B"].as_int(), b.S = j["S"].as_int();
  for (auto& v : j["text"].as_array()) b.text.push_back(int32_t(v.as_int()));
  for (auto& v : j["lengths"].as_array()) b.lengths.push_back(int32_t(v.as_int()));
  for (auto& v : j["labels"].as_array()) b.labels.push_back(int32_t(v.as_int()));
  model->backbone().params().zero_grad();
  model->memory_params().zero_grad();
  Tape tape, scratch(Tape::Mode::Inference);
  RmtResult r = rmt_forward(*model, tape, scratch, b, j["bptt_depth"].as_int());
  std::vector<SafetensorsItem> items;
  items.emplace_back("loss", Tensor::from({1}, {float(r.loss)}));
  items.emplace_back("logits", Tensor::from({b.B, int64_t(model->config().labels.size())}, r.logits));
  for (auto& p : model->backbone().params().all()) items.emplace_back(p.name, p.grad);
  items.emplace_back("rmt.memory", model->memory_params()[0].grad);
  save_safetensors(join_path(dir, "grads.safetensors"), items);
}

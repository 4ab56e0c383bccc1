#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "scratch.h"

using namespace mnemo;

namespace {

Checkpoint sample(int64_t step, float bias) {
  Checkpoint ck;
  Rng rng(42);
  for (int i = 0; i < 7; ++i) rng.normal();  // leaves a spare normal in the state
  ck.rng = rng.state();
  ck.step = step;
  ck.weights.emplace_back("wte.weight", Tensor::from({2, 3}, {1, 2, 3, 4, 5, bias}));  // (V, C)
  ck.weights.emplace_back("ln.bias", Tensor::from({3}, {0.5f, -0.5f, 0}));            // (C)
  ck.optimizer.emplace_back("m.wte.weight", Tensor::from({2, 3}, {0.1f, 0, 0, 0, 0, -0.1f}));
  ck.optimizer.emplace_back("v.wte.weight", Tensor::zeros({2, 3}));
  ck.state["lr"] = Json(3e-4);
  ck.state["curriculum"] = Json(Json::Array{Json(1), Json(2)});
  ck.extra_files["config.json"] = "{\"n_layer\": 2}\n";
  return ck;
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.rng, b.rng);
  EXPECT_EQ(a.state.dump(), b.state.dump());
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i) {
    EXPECT_EQ(a.weights[i].first, b.weights[i].first);
    EXPECT_EQ(a.weights[i].second.to_vector(), b.weights[i].second.to_vector());
  }
  ASSERT_EQ(a.optimizer.size(), b.optimizer.size());
  for (size_t i = 0; i < a.optimizer.size(); ++i) {
    EXPECT_EQ(a.optimizer[i].first, b.optimizer[i].first);
    EXPECT_EQ(a.optimizer[i].second.to_vector(), b.optimizer[i].second.to_vector());
  }
}

void expect_error(const std::string& path, std::initializer_list<std::string> pieces) {
  try {
    load_checkpoint(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace

TEST(Checkpoint, DirectoryRoundTripRestoresEverythingAndTheRngStream) {
  std::string dir = join_path(scratch_dir(), "ck_dir");
  std::filesystem::remove_all(dir);
  EXPECT_FALSE(is_checkpoint(dir));
  Checkpoint ck = sample(100, 6);
  save_checkpoint(dir, ck);
  EXPECT_TRUE(is_checkpoint(dir));
  Checkpoint back = load_checkpoint(dir);
  expect_same(ck, back);
  EXPECT_EQ(back.extra_files.at("config.json"), "{\"n_layer\": 2}\n");
  // The weights file alone is a plain safetensors file under the parameters' own names.
  SafetensorsFile model(join_path(dir, "model.safetensors"));
  EXPECT_EQ(model.tensor("wte.weight", {2, 3})[5], 6.0f);

  // A resumed generator continues the same stream (including the cached Box-Muller spare).
  Rng a(42), b(0);
  for (int i = 0; i < 7; ++i) a.normal();
  b.set_state(back.rng);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.normal(), b.normal());

  // Overwriting swaps the new one in and leaves no temporary behind.
  save_checkpoint(dir, sample(200, 7));
  Checkpoint again = load_checkpoint(dir);
  EXPECT_EQ(again.step, 200);
  EXPECT_EQ(again.weight("wte.weight", {2, 3})[5], 7.0f);
  for (auto& e : std::filesystem::directory_iterator(scratch_dir()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  // Loaded tensors are writable.
  again.weights[0].second[0] = 1.0f;
}

TEST(Checkpoint, SingleFileRoundTrip) {
  std::string p = join_path(scratch_dir(), "ck.safetensors");
  Checkpoint ck = sample(5, 2);
  ck.extra_files.clear();
  save_checkpoint(p, ck);
  EXPECT_TRUE(is_checkpoint(p));
  expect_same(ck, load_checkpoint(p));
}

TEST(Checkpoint, LookupHelpersNameTheTensor) {
  std::string p = join_path(scratch_dir(), "ck2.safetensors");
  save_checkpoint(p, sample(1, 0));
  Checkpoint ck = load_checkpoint(p);
  EXPECT_EQ(ck.weight("ln.bias", {3})[0], 0.5f);
  try {
    ck.weight("ln.bias", {4});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'ln.bias' has shape [3], expected [4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ck.optimizer_tensor("m.nope", {1}), Error);
}

TEST(Checkpoint, RejectsBadCheckpoints) {
  std::string base = scratch_dir();
  // Not a checkpoint at all.
  expect_error(join_path(base, "nothing_here"), {"nothing_here", "no such checkpoint"});
  std::string plain = join_path(base, "plain.safetensors");
  save_safetensors(plain, {SafetensorsItem("w", Tensor::zeros({2}))});
  expect_error(plain, {"plain.safetensors", "not a mnemo checkpoint"});
  EXPECT_FALSE(is_checkpoint(plain));

  // Damaged trainer state, one field at a time.
  std::string dir = join_path(base, "ck_bad");
  std::filesystem::remove_all(dir);
  save_checkpoint(dir, sample(3, 1));
  std::string state = join_path(dir, "trainer_state.json");
  Json good = Json::parse(read_file(state));
  auto with = [&](const char* key, Json v) {
    Json j = good;
    j[key] = std::move(v);
    atomic_write(state, j.dump());
  };
  with("format", Json("other"));
  expect_error(dir, {"trainer_state.json", "format"});
  with("version", Json(9));
  expect_error(dir, {"trainer_state.json", "version 9"});
  with("step", Json(-1));
  expect_error(dir, {"trainer_state.json", "negative"});
  with("step", Json(1.5));
  expect_error(dir, {"step"});
  with("rng", Json(Json::Array{Json("12"), Json("zz")}));
  expect_error(dir, {"trainer_state.json", "rng"});
  Json bad_word = good;
  bad_word["rng"].as_array()[3] = Json("xyz");
  atomic_write(state, bad_word.dump());
  expect_error(dir, {"rng[3]"});
  with("state", Json(3));
  expect_error(dir, {"state"});
  atomic_write(state, "{\"format\": ");
  expect_error(dir, {"trainer_state.json"});
  atomic_write(state, good.dump());
  EXPECT_EQ(load_checkpoint(dir).step, 3);

  // A non-finite weight, a truncated tensor file.
  save_safetensors(join_path(dir, "model.safetensors"), {SafetensorsItem("w", Tensor::from({2}, {1.0f, NAN}))});
  expect_error(dir, {"model.safetensors", "'w'", "non-finite"});
  std::string opt = join_path(dir, "optimizer.safetensors");
  std::string bytes = read_file(opt);
  atomic_write(opt, bytes.substr(0, bytes.size() - 4));
  save_safetensors(join_path(dir, "model.safetensors"), {SafetensorsItem("w", Tensor::from({2}, {1.0f, 2.0f}))});
  expect_error(dir, {"optimizer.safetensors"});
}

TEST(Checkpoint, SaveRefusesBadInputAndForeignDirectories) {
  std::string base = scratch_dir();
  Checkpoint ck = sample(1, 0);
  ck.weights.emplace_back("ln.bias", Tensor::zeros({3}));
  EXPECT_THROW(save_checkpoint(join_path(base, "dup"), ck), Error);
  EXPECT_FALSE(file_exists(join_path(base, "dup")));
  Checkpoint ck2 = sample(1, 0);
  ck2.extra_files["../evil"] = "x";
  EXPECT_THROW(save_checkpoint(join_path(base, "evil"), ck2), Error);
  // A directory with other content is not overwritten.
  std::string foreign = join_path(base, "foreign");
  make_directories(foreign);
  atomic_write(join_path(foreign, "notes.txt"), "mine");
  EXPECT_THROW(save_checkpoint(foreign, sample(1, 0)), Error);
  EXPECT_EQ(read_file(join_path(foreign, "notes.txt")), "mine");
}

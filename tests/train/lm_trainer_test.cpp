#include "train/lm_trainer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/error.h"
#include "base/progress.h"
#include "base/rng.h"
#include "train/optimizer.h"
#include "scratch.h"

using namespace mnemo;

namespace {

// A tiny corpus with structure a model can learn quickly: a repeating pattern of 9 ids with some noise.
std::vector<int32_t> pattern_ids(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(rng.uniform() < 0.05 ? int32_t(rng.below(32)) : int32_t((i * 7) % 9));
  return ids;
}

LoadedModel tiny_gpt2(uint64_t seed) {
  Json j = Json::parse(R"({"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64,
                           "vocab_size": 32})");
  LoadedModel m;
  m.type = "gpt2";
  m.gpt2 = std::make_unique<Gpt2>(Gpt2Config::from_json(j, "test"));
  m.gpt2->init_random(seed);
  return m;
}

LmTrainConfig tiny_config(const std::string& ckpt, int64_t steps) {
  LmTrainConfig c;
  c.steps = steps;
  c.batch = 4;
  c.seq = 16;
  c.lr = 3e-3;
  c.warmup = 5;
  c.eval_every = 10;
  c.eval_batches = 2;
  c.save_every = 10;
  c.seed = 7;
  c.checkpoint = ckpt;
  return c;
}

}  // namespace

TEST(LmTrainer, TrainingLowersTheValidationLoss) {
  Progress::set_quiet(true);
  auto m = tiny_gpt2(1);
  auto train = pattern_ids(4000, 1), val = pattern_ids(600, 2);
  auto c = tiny_config(scratch_dir() + "/lm_lower", 60);
  double before = lm_validation_loss(m, val, c);
  auto log = train_lm(m, train, val, c, false);
  ASSERT_EQ(log.val_loss.size(), 6u);
  EXPECT_LT(log.val_loss.back().second, 0.5 * before);  // starts near ln 32 = 3.47; the pattern is ~9x easier
}

TEST(LmTrainer, StopAndResumeGivesIdenticalLosses) {
  Progress::set_quiet(true);
  auto train = pattern_ids(3000, 3), val = pattern_ids(400, 4);
  // Uninterrupted: 30 steps.
  auto a = tiny_gpt2(5);
  auto ca = tiny_config(scratch_dir() + "/lm_full", 30);
  auto full = train_lm(a, train, val, ca, false);
  // Interrupted: stopped after 20 of the 30 steps (checkpoint at 20), then a fresh model resumes to 30.
  auto b = tiny_gpt2(5);
  auto cb = tiny_config(scratch_dir() + "/lm_resume", 30);
  cb.stop_at = 20;
  train_lm(b, train, val, cb, false);
  auto b2 = tiny_gpt2(99);  // different initial weights: the checkpoint must replace them
  cb.stop_at = 0;
  auto resumed = train_lm(b2, train, val, cb, true);
  ASSERT_EQ(resumed.start_step, 20);
  ASSERT_EQ(resumed.train_loss.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(resumed.train_loss[i].second, full.train_loss[20 + i].second) << i;
  for (int64_t k = 0; k < a.params().size(); ++k)
    for (int64_t i = 0; i < a.params()[k].value.numel(); ++i)
      ASSERT_EQ(a.params()[k].value[i], b2.params()[k].value[i]) << a.params()[k].name;
}

TEST(LmTrainer, BadSetupsAreClearErrors) {
  Progress::set_quiet(true);
  auto m = tiny_gpt2(1);
  auto c = tiny_config("", 5);
  EXPECT_THROW(train_lm(m, std::vector<int32_t>(10, 1), {}, c, false), Error);     // shorter than a window
  EXPECT_THROW(train_lm(m, std::vector<int32_t>(100, 40), {}, c, false), Error);   // id outside the vocabulary
  EXPECT_THROW(train_lm(m, pattern_ids(100, 1), {}, c, true), Error);              // resume without checkpoint
  c.objective = LmObjective::Masked;
  EXPECT_THROW(train_lm(m, pattern_ids(100, 1), {}, c, false), Error);             // MLM on a GPT-2
}

TEST(LrSchedule, WarmsUpThenDecaysLinearly) {
  LrSchedule s{1.0, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(60), 0.55);
  EXPECT_DOUBLE_EQ(s.at(110), 0.1);
}

TEST(ClipGradNorm, ScalesToTheLimitAndReportsTheNorm) {
  ParameterSet p;
  p.declare("w", {2});
  p.allocate();
  p[0].grad.data()[0] = 3;
  p[0].grad.data()[1] = 4;
  EXPECT_DOUBLE_EQ(clip_grad_norm(p, 1.0), 5.0);
  EXPECT_NEAR(p[0].grad.data()[0], 0.6, 1e-6);
  EXPECT_NEAR(p[0].grad.data()[1], 0.8, 1e-6);
}

TEST(ClipGradNorm, SetsShareOneNormAndOneScale) {
  ParameterSet a, b;
  a.declare("w", {2});
  a.declare("v", {1});
  a.allocate();
  b.declare("memory", {1});
  b.allocate();
  a[0].grad.data()[0] = 2, a[0].grad.data()[1] = 0, a[1].grad.data()[0] = 4, b[0].grad.data()[0] = 4;
  EXPECT_DOUBLE_EQ(clip_grad_norm({&a, &b}, 0.0), 6.0);  // no limit: nothing scaled
  EXPECT_EQ(b[0].grad.data()[0], 4.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm({&a, &b}, 3.0), 6.0);
  EXPECT_NEAR(a[0].grad.data()[0], 1.0, 1e-6);
  EXPECT_NEAR(a[1].grad.data()[0], 2.0, 1e-6);
  EXPECT_NEAR(b[0].grad.data()[0], 2.0, 1e-6);
  EXPECT_NEAR(clip_grad_norm({&a, &b}, 0.0), 3.0, 1e-5);
}

// The curriculum's rules, and a killed RMT training run resumed from its checkpoint giving the same losses (and
// log lines) as a run that was never stopped. Uses a tiny random BERT with MiniLM's vocabulary and a tiny corpus
// written here, so it runs in seconds.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "base/json.h"
#include "io/model_dir.h"
#include "memory/rmt_dir.h"
#include "train/curriculum.h"
#include "train/rmt_trainer.h"
#include "scratch.h"

using namespace mnemo;

TEST(Curriculum, AdvancesOnlyWhenConverged) {
  CurriculumConfig c;
  c.start_segments = 1, c.max_segments = 3, c.threshold = 0.9, c.confirm = 2, c.min_steps = 4, c.max_steps = 10;
  c.mixed_steps = 3, c.mixed_min = 2;
  Curriculum cur(c);
  Rng rng(1);
  for (int i = 0; i < 3; ++i) cur.on_step();
  EXPECT_EQ(cur.on_eval(1.0), Curriculum::Event::None);  // too few steps: does not count
  cur.on_step();
  EXPECT_EQ(cur.on_eval(1.0), Curriculum::Event::None);  // 1 of 2 confirmations
  EXPECT_EQ(cur.on_eval(0.5), Curriculum::Event::None);  // a miss resets the count
  EXPECT_EQ(cur.on_eval(0.95), Curriculum::Event::None);
  EXPECT_EQ(cur.on_eval(0.95), Curriculum::Event::Advanced);
  EXPECT_EQ(cur.segments(), 2);
  EXPECT_EQ(cur.batch_segments(rng), 2);
  // Stage 2 never converges: after max_steps it advances anyway, recorded as not converged.
  for (int i = 0; i < 10; ++i) cur.on_step();
  EXPECT_EQ(cur.on_eval(0.2), Curriculum::Event::Advanced);
  ASSERT_EQ(cur.history().size(), 2u);
  EXPECT_TRUE(cur.history()[0].converged);
  EXPECT_FALSE(cur.history()[1].converged);
  for (int i = 0; i < 4; ++i) cur.on_step();
  cur.on_eval(1.0);
  EXPECT_EQ(cur.on_eval(1.0), Curriculum::Event::EnteredMixed);
  EXPECT_EQ(cur.phase(), Curriculum::Phase::Mixed);
  // Mixed batches draw from [mixed_min, max].
  std::set<int64_t> seen;
  for (int i = 0; i < 100; ++i) seen.insert(cur.batch_segments(rng));
  EXPECT_EQ(seen, (std::set<int64_t>{2, 3}));
  // New rules mid-run keep the state; a maximum below the current stage is refused.
  CurriculumConfig more = c;
  more.max_segments = 4;
  cur.set_config(more);
  EXPECT_EQ(cur.phase(), Curriculum::Phase::Mixed);
  more.max_segments = 2;
  EXPECT_THROW(cur.set_config(more), Error);
  cur.set_config(c);
  // JSON round trip mid-phase.
  cur.on_step();
  Curriculum back = Curriculum::from_json(cur.to_json(), "test");
  EXPECT_EQ(back.to_json().dump(), cur.to_json().dump());
  EXPECT_EQ(cur.on_step(), Curriculum::Event::None);
  EXPECT_EQ(cur.on_step(), Curriculum::Event::Done);
  EXPECT_EQ(cur.phase(), Curriculum::Phase::Done);
  // A finished run resumed with a longer mixed phase goes on with the steps it has not done; the same length, or a
  // shorter one, leaves it finished.
  const size_t records = cur.history().size();
  cur.set_config(c);
  EXPECT_EQ(cur.phase(), Curriculum::Phase::Done);
  CurriculumConfig longer = c;
  longer.mixed_steps = c.mixed_steps + 2;
  cur.set_config(longer);
  EXPECT_EQ(cur.phase(), Curriculum::Phase::Mixed);
  EXPECT_EQ(cur.history().size(), records - 1);
  EXPECT_EQ(cur.on_step(), Curriculum::Event::None);
  EXPECT_EQ(cur.on_step(), Curriculum::Event::Done);
  ASSERT_EQ(cur.history().size(), records);
  EXPECT_EQ(cur.history().back().steps, longer.mixed_steps);
  // A run whose stages ended it (no mixed phase) starts one.
  CurriculumConfig plain = c;
  plain.max_segments = 1, plain.mixed_min = 1, plain.mixed_steps = 0;
  Curriculum short_run(plain);
  for (int i = 0; i < 4; ++i) short_run.on_step();
  short_run.on_eval(1.0);
  ASSERT_EQ(short_run.on_eval(1.0), Curriculum::Event::Done);
  plain.mixed_steps = 1;
  short_run.set_config(plain);
  EXPECT_EQ(short_run.phase(), Curriculum::Phase::Mixed);
  EXPECT_EQ(short_run.on_step(), Curriculum::Event::Done);
  // Bad settings.
  CurriculumConfig bad = c;
  bad.max_segments = 0;
  EXPECT_THROW(Curriculum{bad}, Error);
  bad = c;
  bad.threshold = 1.5;
  EXPECT_THROW(Curriculum{bad}, Error);
}

namespace {

const std::string kVocab = std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384/vocab.txt";

// A tiny corpus: sentences that mention people and places, split into train and validation documents.
void write_corpus(const std::string& dir) {
  make_directories(dir);
  const char* words[] = {"the", "old", "man", "walked", "along", "river", "and", "saw", "a", "ship", "near",
                         "town", "where", "people", "lived", "in", "small", "houses", "by", "sea"};
  for (const char* split : {"train", "validation"}) {
    std::ostringstream os;
    for (int d = 0; d < 3; ++d) {
      std::string text;
      for (int s = 0; s < 40; ++s) {
        std::string sent;
        for (int w = 0; w < 6 + (s * 7 + d) % 5; ++w) sent += std::string(sent.empty() ? "" : " ") + words[(s * 3 + w * 5 + d) % 20];
        sent[0] = char(std::toupper(sent[0]));
        text += (text.empty() ? "" : " ") + sent + ".";
      }
      Json j = Json::object();
      j["id"] = cat(split, "/", d);
      j["source"] = "test";
      j["text"] = text;
      os << j.dump() << "\n";
    }
    atomic_write(join_path(dir, cat(split, ".jsonl")), os.str());
  }
}

void write_tiny_bert(const std::string& dir) {
  BertConfig c;
  c.num_hidden_layers = 1, c.hidden_size = 16, c.num_attention_heads = 2, c.intermediate_size = 32;
  c.max_position_embeddings = 32;
  Bert b(c);
  b.init_random(5);
  save_model_dir(dir, b);
}

std::vector<std::string> log_lines_without_time(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    Json j = Json::parse(line);
    Json k = Json::object();
    for (auto& [key, v] : j.as_object())
      if (key != "seconds") k[key] = v;
    out.push_back(k.dump());
  }
  return out;
}

}  // namespace

TEST(RmtTrainer, ResumedRunGivesTheSameLosses) {
  if (!file_exists(kVocab)) GTEST_SKIP() << kVocab << " missing (scripts/setup installs it)";
  Progress::set_quiet(true);
  const std::string root = scratch_dir();
  write_corpus(root + "/corpus");
  write_tiny_bert(root + "/bert");
  RmtTrainConfig c;
  c.init = root + "/bert";
  c.tokenizer = kVocab;
  c.corpus_dir = root + "/corpus";
  c.num_mem_tokens = 2, c.segment_tokens = 12, c.batch = 3, c.lr = 1e-3, c.warmup = 2;
  c.eval_every = 2, c.val_count = 3, c.val_batch = 2, c.seed = 9;
  c.distractors = 0.3;  // its draws come from the run's RNG, its rate from the saved configuration
  c.curriculum.max_segments = 2, c.curriculum.threshold = 0.01, c.curriculum.confirm = 1;
  c.curriculum.min_steps = 2, c.curriculum.max_steps = 4, c.curriculum.mixed_steps = 3;
  // Three times: as configured, and with batches that start from the warm chain's memories (which the
  // checkpoint holds, with each row's age, so the resumed run starts the same batches from the same states), one
  // chain of growing age, then one whose rows start over at random.
  std::vector<double> plain;
  for (auto [warm, reset] : {std::pair{0.0, 0.0}, {0.7, 0.0}, {0.7, 0.5}}) {
    SCOPED_TRACE(cat("warm_memory ", warm, " warm_reset ", reset));
    c.warm_memory = warm, c.warm_segments = 2, c.warm_reset = reset;
    const std::string name = warm == 0 ? "" : reset == 0 ? "w" : "r";
    const std::string a_dir = root + "/" + name + "a", b_dir = root + "/" + name + "b";

    RmtTrainLimits all;
    all.max_total_steps = 9;
    RmtTrainSummary a = train_rmt(c, a_dir, false, all);
    ASSERT_EQ(a.losses.size(), 9u);

    RmtTrainLimits first;
    first.max_total_steps = 5;  // stops between evaluations: the checkpoint carries the partial statistics
    RmtTrainSummary b1 = train_rmt(c, b_dir, false, first);
    EXPECT_THROW(train_rmt(c, b_dir, false, first), Error);  // refuses to overwrite a run
    RmtTrainSummary b2 = resume_rmt(b_dir, all);
    std::vector<double> b = b1.losses;
    b.insert(b.end(), b2.losses.begin(), b2.losses.end());
    ASSERT_EQ(b.size(), a.losses.size());
    for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(b[i], a.losses[i]) << "step " << i + 1;
    EXPECT_EQ(a.curriculum.dump(), b2.curriculum.dump());
    EXPECT_EQ(log_lines_without_time(a_dir + "/log.jsonl"), log_lines_without_time(b_dir + "/log.jsonl"));
    if (warm == 0) plain = a.losses;
    else EXPECT_NE(a.losses, plain);  // some batches did start from the chain
    if (warm > 0) {  // 9 steps of 2 segments: one age for all rows, or rows that started over
      Json last = Json::parse(log_lines_without_time(a_dir + "/log.jsonl").back());
      if (reset == 0) EXPECT_EQ(last["warm_age"].as_number(), 18);
      else EXPECT_LT(last["warm_age_min"].as_number(), last["warm_age_max"].as_number());
    }
  }
  c.warm_memory = 0;
  c.variant = "decoder";
  c.warm_memory = 0.5;
  EXPECT_THROW(train_rmt(c, root + "/dec", false, RmtTrainLimits{}), Error);  // the encoder's option
  c.variant = "encoder";
  c.warm_memory = 1.5;
  EXPECT_THROW(train_rmt(c, root + "/big", false, RmtTrainLimits{}), Error);  // not a probability
  c.warm_memory = 0.5, c.warm_segments = 0;
  EXPECT_THROW(train_rmt(c, root + "/none", false, RmtTrainLimits{}), Error);  // reads nothing
  c.warm_segments = 4, c.warm_reset = -0.1;
  EXPECT_THROW(train_rmt(c, root + "/never", false, RmtTrainLimits{}), Error);  // not a probability
  c.warm_memory = 0, c.warm_reset = 0;
  // The run went through both stages into the mixed phase and saved each stage as a model directory.
  EXPECT_TRUE(file_exists(root + "/a/stage-01/config.json"));
  EXPECT_TRUE(file_exists(root + "/a/stage-02/config.json"));
  auto m = load_rmt(root + "/a/stage-02");
  EXPECT_EQ(m->config().segment_tokens, 12);
  // Frozen word embeddings: identical to the initial model's.
  auto base = load_bert(root + "/bert");
  const Parameter* w0 = base->params().find("embeddings.word_embeddings.weight");
  const Parameter* w1 = m->backbone().params().find("bert.embeddings.word_embeddings.weight");
  ASSERT_TRUE(w0 && w1);
  EXPECT_EQ(w0->value.to_vector(), w1->value.to_vector());
}

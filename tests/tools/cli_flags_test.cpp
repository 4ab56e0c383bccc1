// The mnemo program's flag checks: a flag that would be ignored, misspelt or out of range is a one-line error
// naming it, with exit 1, before any file is read (the inputs below do not exist, so a late check would report
// those instead). Where a check lets a form through, a small run shows that form still works.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "run_mnemo.h"

namespace {

namespace fs = std::filesystem;
using namespace mnemo_test;

// `args` fails with exactly this one-line error.
void expect_error(const std::string& args, const std::string& error) {
  SCOPED_TRACE("mnemo " + args);
  const Result r = mnemo(args);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, error + "\n");
}

const std::string kNo = "/nonexistent/mnemo-flags-test";  // an input that is never there

class CliFlags : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(std::string(MNEMO_BINARY_DIR) + "/mnemo")) << "build the mnemo program first";
  }
};

// 1. train lm reads every flag before loading data or a model.
TEST_F(CliFlags, TrainLmChecksFlagsBeforeTheData) {
  const std::string base = "train lm -t 1 --out " + (scratch() / "lm").string() + " --data " + kNo + ".json";
  expect_error(base + " --vocab 32 --n-layr 2", "mnemo train: error: unknown flag --n-layr");
  for (const char* f : {"--arch gpt2", "--n-layer 2", "--d-model 16", "--n-head 2", "--context 64", "--vocab 32"}) {
    const std::string flag = std::string(f).substr(0, std::string(f).find(' '));
    expect_error(base + " --model " + kNo + " " + f,
                 "mnemo train: error: " + flag + " does not apply with --model (the directory's config decides)");
  }
  expect_error(base + " --tokenizer " + kNo + " --vocab 32",
               "mnemo train: error: --vocab does not apply with --tokenizer (the tokenizer's vocabulary is the "
               "model's)");
  expect_error(base + " --vocab 32 --arch gtp2", "mnemo train: error: --arch must be gpt2 or bert, not 'gtp2'");
  expect_error(base + " --vocab 32 --objective xlm", "mnemo train: error: --objective must be clm or mlm, not 'xlm'");
  expect_error(base + " --vocab 32 --stop-at -1", "mnemo train: error: --stop-at must be non-negative, got -1");
  expect_error(base, "mnemo train: error: a new model needs --tokenizer PATH or --vocab N");
  EXPECT_FALSE(fs::exists(scratch() / "lm"));  // nothing written by a refused line
}

// ... and still trains: a new model from the flags, then that model continued with --model.
TEST_F(CliFlags, TrainLmNewAndContinued) {
  const fs::path ids = scratch() / "ids.json";
  {
    std::ofstream f(ids);
    f << "[";
    for (int i = 0; i < 200; ++i) f << (i ? ", " : "") << (i * 7) % 32;
    f << "]";
  }
  const std::string common = " -t 1 --quiet --data " + ids.string() + " --batch 2 --seq 8 --json";
  const Result a = mnemo("train lm --out " + (scratch() / "m1").string() + common +
                         " --vocab 32 --n-layer 1 --d-model 16 --n-head 2 --context 16 --steps 2");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_NE(a.out.find("\"steps\": 2"), std::string::npos) << a.out;
  const Result b = mnemo("train lm --model " + (scratch() / "m1").string() + " --out " + (scratch() / "m2").string() +
                         common + " --steps 1");
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_TRUE(fs::exists(scratch() / "m2" / "config.json"));
  // A causal model has no mask token to set.
  expect_error("train lm --out " + (scratch() / "m3").string() + common + " --vocab 32 --n-layer 1 --d-model 16" +
                   " --n-head 2 --context 16 --steps 2 --mask-id 3",
               "mnemo train: error: --mask-id is for the mlm objective (a causal LM masks nothing)");
  EXPECT_FALSE(fs::exists(scratch() / "m3"));
}

// 2. tokenize without `train` refuses every train-only flag by name.
TEST_F(CliFlags, TokenizeRefusesTrainFlags) {
  const std::string base = "tokenize --tokenizer " + kNo + " --text " + kNo;
  for (const char* f : {"--vocab-size 300", "--min-frequency 3", "--corpus x", "--out x", "--pattern gpt2",
                        "--special x", "--individual-digits"}) {
    const std::string flag = std::string(f).substr(0, std::string(f).find(' '));
    expect_error(base + " " + f, "mnemo tokenize: error: " + flag + " belongs to 'mnemo tokenize train'");
  }
  // With `train` they apply.
  const fs::path text = scratch() / "corpus.txt", out = scratch() / "tok.json";
  {
    std::ofstream f(text);
    for (int i = 0; i < 50; ++i) f << "the cat sat on the mat and the dog sat on the log\n";
  }
  const std::string train = "tokenize train --corpus " + text.string() + " --out " + out.string() + " --json";
  const Result r = mnemo(train + " --vocab-size 260 --min-frequency 1");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"vocab_size\": 260"), std::string::npos) << r.out;
  const Result rare = mnemo(train + " --min-frequency 1000");  // no pair occurs that often: bytes and the special
  ASSERT_EQ(rare.status, 0) << rare.err;
  EXPECT_NE(rare.out.find("\"vocab_size\": 257"), std::string::npos) << rare.out;
}

// 3. train rmt stops early with --stop-at, as train lm and train qa; --max-total-steps is the same flag.
TEST_F(CliFlags, TrainRmtStopAt) {
  const std::string out = (scratch() / "rmt").string();
  const std::string no_ckpt = "mnemo train: error: " + out + "/checkpoint: no checkpoint to resume";
  for (const char* f : {"--stop-at 5", "--stop-at=5", "--max-total-steps 5", "--max-total-steps=5"})
    expect_error("train rmt --out " + out + " --resume " + f, no_ckpt);  // accepted: the next check is reached
  for (const char* f : {"--stop-at -1", "--max-total-steps -1", "--max-total-steps=-1"})
    expect_error("train rmt --out " + out + " --resume " + f, "mnemo train: error: --stop-at must be non-negative, got -1");
  const std::string help = mnemo("train rmt --help").out;
  EXPECT_NE(help.find("  --stop-at N "), std::string::npos) << help;
  EXPECT_NE(help.find("--max-total-steps"), std::string::npos) << help;
}

// train rmt checks the qa fact range as eval rmt and tasks generate do, the curriculum's step bounds and the
// distractor rate, before anything is loaded or written.
TEST_F(CliFlags, TrainRmtFactsRangeAndStageSteps) {
  const std::string out = (scratch() / "rmt-facts").string();
  const std::string train = "train rmt --init " + kNo + " --out " + out + " --task qa2";
  expect_error(train + " --facts-min 1 --facts-max 3",
               "mnemo train: error: --facts-min/--facts-max: qa2 needs 2 <= min <= max <= 10000, got 1, 3");
  expect_error(train + " --facts-min 2", "mnemo train: error: --facts-min needs --facts-max");
  expect_error("train rmt --init " + kNo + " --out " + out + " --facts-max 3",
               "mnemo train: error: --facts-min/--facts-max are for qa1-qa3, not --task memorize");
  // Stages end at evaluations, so their step bounds must fall on one.
  expect_error("train rmt --init " + kNo + " --out " + out + " --eval-every 50 --min-steps 10 --max-steps 100",
               "mnemo train: error: --min-steps 10 is checked at evaluations: make it a multiple of --eval-every 50");
  expect_error("train rmt --init " + kNo + " --out " + out + " --distractors 1.5",
               "mnemo train: error: --distractors must be a probability in [0, 1], got 1.5");
  expect_error("train rmt --init " + kNo + " --out " + out + " --warm-memory 2",
               "mnemo train: error: --warm-memory must be a probability in [0, 1], got 2");
  expect_error("train rmt --variant decoder --init " + kNo + " --out " + out + " --warm-memory 0.5",
               "mnemo train: error: --warm-memory is for the encoder variant");
  expect_error("train rmt --init " + kNo + " --out " + out + " --warm-memory 0.5 --warm-segments 0",
               "mnemo train: error: --warm-segments must be at least 1, got 0");
  expect_error("train rmt --init " + kNo + " --out " + out + " --warm-memory 0.5 --warm-reset 2",
               "mnemo train: error: --warm-reset must be a probability in [0, 1], got 2");
  EXPECT_FALSE(fs::exists(out));
}

// 4. eval rmt: flags that would be ignored or overwritten.
TEST_F(CliFlags, EvalRmtRefusesIgnoredFlags) {
  const std::string gen = "eval rmt --model " + kNo + " --segments 2";
  expect_error(gen + " --facts-min 2", "mnemo eval: error: --facts-min needs --facts-max");
  const std::string range = "mnemo eval: error: --facts-min/--facts-max: ";
  expect_error(gen + " --task qa1 --facts-max 0", range + "qa1 needs 1 <= min <= max <= 10000, got 1, 0");
  expect_error(gen + " --task qa1 --facts-min -1 --facts-max 2",
               range + "qa1 needs 1 <= min <= max <= 10000, got -1, 2");
  expect_error(gen + " --task qa1 --facts-min 3 --facts-max 2", range + "qa1 needs 1 <= min <= max <= 10000, got 3, 2");
  expect_error(gen + " --task qa1 --facts-max 10001", range + "qa1 needs 1 <= min <= max <= 10000, got 1, 10001");
  // qa3's story needs 3 sentences (was an internal check failure); min 0 means the task's shortest story.
  expect_error(gen + " --task qa3 --facts-min 2 --facts-max 3", range + "qa3 needs 3 <= min <= max <= 10000, got 2, 3");
  expect_error(gen + " --task qa3 --facts-max 2", range + "qa3 needs 3 <= min <= max <= 10000, got 3, 2");
  expect_error(gen + " --facts-max 2", "mnemo eval: error: --facts-min/--facts-max are for qa1-qa3, not --task memorize");
  expect_error("eval rmt --model " + kNo + " --segments 1,2 --attention-out a.json",
               "mnemo eval: error: --attention-out writes one file: give one --segments value, not 1,2");
  expect_error(gen + " --attention-first 2", "mnemo eval: error: --attention-first needs --attention-out");
  expect_error(gen + " --precision fp16", "mnemo eval: error: --precision: 'fp16' is not fp32 or bf16");
  expect_error(gen + " --probe-every 0", "mnemo eval: error: --probe-every must be at least 1");
  const std::string file = "eval rmt --model " + kNo + " --data " + kNo + ".jsonl";
  for (const char* f : {"--attention-out a.json", "--task qa1", "--count 4", "--seed 1", "--facts-max 2",
                        "--distractors 0.1"}) {
    const std::string flag = std::string(f).substr(0, std::string(f).find(' '));
    expect_error(file + " " + f, "mnemo eval: error: " + flag + " is for generated samples (--segments), not --data");
  }
  // Accepted forms reach the model: --facts-max alone (from qa2's shortest, 2), one --segments value with
  // --attention-out, --show with a task file.
  for (const std::string& ok : {gen + " --task qa2 --facts-max 3", gen + " --attention-out a.json --count 1 --batch 1",
                                file + " --show"})
    expect_error(ok, "mnemo eval: error: " + kNo + ": not a directory");
}

// --show with --json puts every sample in the JSON (without it, only up to 16).
TEST_F(CliFlags, EvalRmtShowWithJson) {
  const std::string model = std::string(MNEMO_SOURCE_DIR) + "/models/rmt-memorize-minilm";
  const std::string corpus = std::string(MNEMO_DATA_DIR) + "/corpus";
  if (!fs::exists(std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384") || !fs::exists(corpus))
    GTEST_SKIP() << "the MiniLM base or the corpus is not set up (scripts/setup fetches them)";
  const std::string cmd = "eval rmt -t 1 --quiet --model " + model + " --corpus " + corpus +
                          " --task memorize --segments 1 --count 20 --batch 20 --json";
  const Result shown = mnemo(cmd + " --show"), plain = mnemo(cmd);
  ASSERT_EQ(shown.status, 0) << shown.err;
  ASSERT_EQ(plain.status, 0) << plain.err;
  size_t n = 0;
  for (size_t at = shown.out.find("\"question\""); at != std::string::npos; at = shown.out.find("\"question\"", at + 1))
    ++n;
  EXPECT_EQ(n, 20u) << shown.out;
  EXPECT_EQ(shown.out.find("  question \""), std::string::npos);  // no text lines mixed into the JSON
  EXPECT_EQ(plain.out.find("\"samples\""), std::string::npos);   // 20 > 16: none without --show
}

// tasks generate takes the qa stories' fact range as eval rmt and train rmt do: every record keeps to it.
TEST_F(CliFlags, TasksGenerateFactsRange) {
  const std::string tok = std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384";
  const std::string corpus = std::string(MNEMO_DATA_DIR) + "/corpus";
  if (!fs::exists(tok) || !fs::exists(corpus)) GTEST_SKIP() << "the MiniLM or the corpus is not set up";
  const fs::path out = scratch() / "qa.jsonl";
  const std::string gen = "tasks generate --segments 4 --segment-tokens 32 --tokenizer " + tok + " --corpus " +
                          corpus + " --count 12 --seed 3 --out " + out.string();
  const Result r = mnemo(gen + " --task qa1 --facts-min 2 --facts-max 3");
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream in(out);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const size_t at = line.find("\"facts\": ["), end = line.find(']', at);  // a list of plain sentences
    ASSERT_NE(at, std::string::npos) << line;
    const auto facts = std::count(line.begin() + long(at) + 10, line.begin() + long(end), '"') / 2;
    EXPECT_TRUE(facts >= 2 && facts <= 3) << line;
  }
  EXPECT_EQ(lines, 12);
  fs::remove(out);
  expect_error(gen + " --task qa1 --facts-min 2", "mnemo tasks: error: --facts-min needs --facts-max");
  expect_error(gen + " --task qa2 --facts-min 3 --facts-max 2",
               "mnemo tasks: error: --facts-min/--facts-max: qa2 needs 2 <= min <= max <= 10000, got 3, 2");
  expect_error(gen + " --task qa3 --facts-min 1 --facts-max 4",
               "mnemo tasks: error: --facts-min/--facts-max: qa3 needs 3 <= min <= max <= 10000, got 1, 4");
  expect_error(gen + " --task detect --facts-max 2",
               "mnemo tasks: error: --facts-min/--facts-max are for qa1-qa3, not --task detect");
  expect_error(gen + " --task detect --distractors -0.1",
               "mnemo tasks: error: --distractors must be a probability in [0, 1], got -0.1");
  EXPECT_FALSE(fs::exists(out));
}

// 5. embed's output is always JSON: --json is accepted, and its help says so.
TEST_F(CliFlags, EmbedAcceptsJson) {
  expect_error("embed --model " + kNo + " --ids " + kNo + " --json",
               "mnemo embed: error: " + kNo + ": cannot open: No such file or directory");
  const std::string help = mnemo("embed --help").out;
  EXPECT_NE(help.find("--json                accepted; the output is JSON either way"), std::string::npos) << help;
}

// 6. eval stream: --limit as in eval qa; --reposition needs a bounded run to apply to.
TEST_F(CliFlags, EvalStreamLimitAndReposition) {
  const std::string base = "eval stream --model " + kNo + " --ids " + kNo;
  expect_error(base + " --limit -1", "mnemo eval: error: --limit must be non-negative, got -1");
  const std::string full = "mnemo eval: error: --reposition: the full cache keeps absolute positions (give a bounded "
                           "--memory policy)";
  expect_error(base + " --reposition", full);
  expect_error(base + " --memory full --reposition", full);
  expect_error(base + " --memory full,full --reposition", full);
  // A full run beside a bounded one is the baseline: accepted (the next check, the ids file, is reached).
  expect_error(base + " --memory full,h2o@8 --reposition",
               "mnemo eval: error: " + kNo + ": cannot open: No such file or directory");
}

}  // namespace

// `eval rmt` on task files: bad files give one-line errors naming the file and line; each shipped checkpoint
// (models/rmt-*: deltas against the MiniLM or the SmolLM2 GGUF that scripts/setup fetches) gives its recorded
// accuracy on its shipped task file.
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/progress.h"
#include "eval/rmt_eval.h"
#include "io/gguf_tokenizer.h"
#include "memory/rmt_dir.h"
#include "text/tokenizer.h"
#include "scratch.h"

using namespace mnemo;

namespace {

const std::string kMiniLM = std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384";
const std::string kSmolLM = std::string(MNEMO_DATA_DIR) + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";

std::unique_ptr<RmtEncoder> tiny_rmt_with_bert_vocab() {
  BertConfig c;
  c.num_hidden_layers = 1, c.hidden_size = 16, c.num_attention_heads = 2, c.intermediate_size = 32;
  c.max_position_embeddings = 96, c.head = BertHead::SequenceClassification, c.num_labels = 6;
  RmtConfig r;
  r.num_mem_tokens = 2, r.segment_tokens = 16;
  r.labels = {"bathroom", "hallway", "garden", "office", "bedroom", "kitchen"};
  auto m = std::make_unique<RmtEncoder>(c, r);
  m->backbone().init_random(1);
  m->init_memory(2);
  return m;
}

std::string error_of(RmtEncoder& m, const Tokenizer& tok, const std::string& path) {
  try {
    eval_rmt_file(m, tok, path, 4);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(RmtEval, BadTaskFilesGiveClearErrors) {
  if (!file_exists(kMiniLM + "/vocab.txt")) GTEST_SKIP() << kMiniLM << " missing (scripts/setup fetches it)";
  Progress::set_quiet(true);
  auto tok = load_tokenizer(kMiniLM);
  auto m = tiny_rmt_with_bert_vocab();
  const std::string dir = scratch_dir();
  const std::string good = R"({"input": "Mary went to the office. The sky is blue.", "question": "Where is Mary?", "target": "office"})";
  auto write = [&](const std::string& name, const std::string& text) {
    atomic_write(join_path(dir, name), text);
    return join_path(dir, name);
  };
  // A good file runs and counts its records.
  RmtEvalResult r = eval_rmt_file(*m, *tok, write("good.jsonl", good + "\n" + good + "\n"), 4);
  EXPECT_EQ(r.count, 2);
  // Three records of one length, two of them "office": answering one place for all scores 2 of 3.
  const std::string kitchen = R"({"input": "Mary went to the kitchen. The sky is red.", "question": "Where is Mary?", "target": "kitchen"})";
  r = eval_rmt_file(*m, *tok, write("three.jsonl", good + "\n" + kitchen + "\n" + good + "\n"), 4);
  ASSERT_EQ(r.by_segments.size(), 1u);
  const int64_t S = r.by_segments.begin()->first;
  EXPECT_EQ(r.one_answer_correct(S), 2);
  EXPECT_EQ(r.one_answer_correct(S + 1), 0);  // a length not evaluated
  Json j = r.to_json();
  EXPECT_EQ(j["by_segments"].as_array()[0]["one_answer_correct"].as_int(), 2);
  std::string e = error_of(*m, *tok, write("missing.jsonl", good + "\n{\"input\": \"x\", \"question\": \"q\"}\n"));
  EXPECT_NE(e.find("missing.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("target"), std::string::npos) << e;
  e = error_of(*m, *tok, write("empty.jsonl", R"({"input": "", "question": "Where is Mary?", "target": "office"})"));
  EXPECT_NE(e.find("empty.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  e = error_of(*m, *tok, write("label.jsonl", R"({"input": "Mary went up.", "question": "Where is Mary?", "target": "attic"})"));
  EXPECT_NE(e.find("label.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("attic"), std::string::npos) << e;
  e = error_of(*m, *tok, write("nojson.jsonl", "not json\n"));
  EXPECT_NE(e.find("nojson.jsonl:1"), std::string::npos) << e;
  e = error_of(*m, *tok, write("none.jsonl", "\n"));
  EXPECT_FALSE(e.empty());
}

class ShippedCheckpoint : public ::testing::TestWithParam<const char*> {};

TEST_P(ShippedCheckpoint, GivesItsRecordedAccuracy) {
  const std::string model = std::string(MNEMO_SOURCE_DIR) + "/models/" + GetParam();
  ASSERT_TRUE(file_exists(model + "/expected.json")) << model;
  const bool decoder = rmt_variant(model) == "decoder";
  const std::string base = decoder ? kSmolLM : kMiniLM + "/model.safetensors";
  if (!file_exists(base)) GTEST_SKIP() << base << " missing (scripts/setup fetches it)";
  Progress::set_quiet(true);
  Json want = Json::parse(read_file(model + "/expected.json"));
  const std::string data = std::string(MNEMO_SOURCE_DIR) + "/" + want["data"].as_string();
  auto tok = load_any_tokenizer(rmt_tokenizer_path(model));  // the decoder's is the GGUF's
  RmtEvalResult r = decoder ? eval_rmt_decoder_file(*load_rmt_decoder(model), *tok, data, want["batch"].as_int())
                            : eval_rmt_file(*load_rmt(model), *tok, data, want["batch"].as_int());
  EXPECT_EQ(r.count, want["count"].as_int());
  EXPECT_EQ(r.correct, want["correct"].as_int());
  // Every record is a sample with its line, its facts (tasks generate writes them) and the answer given; the
  // answers that match are the count above.
  ASSERT_EQ(int64_t(r.samples.size()), r.count);
  int64_t matches = 0;
  for (size_t i = 0; i < r.samples.size(); ++i) {
    const auto& s = r.samples[i];
    EXPECT_EQ(s.line, int64_t(i) + 1);
    EXPECT_FALSE(s.facts.empty()) << "line " << s.line;
    EXPECT_EQ(s.facts.size(), s.fact_positions.size());
    EXPECT_FALSE(s.prediction.empty()) << "line " << s.line;
    matches += s.prediction == s.target;
  }
  EXPECT_EQ(matches, r.correct);
  // In bf16 (eval rmt --precision bf16) the model answers the held file as well.
  RmtEvalResult h;
  if (decoder) {
    auto half = load_rmt_decoder(model);
    half->backbone().set_precision(Precision::bf16);
    h = eval_rmt_decoder_file(*half, *tok, data, want["batch"].as_int());
  } else {
    auto half = load_rmt(model);
    half->backbone().set_precision(Precision::bf16);
    h = eval_rmt_file(*half, *tok, data, want["batch"].as_int());
  }
  EXPECT_EQ(h.correct, want["correct"].as_int()) << "bf16";
}

INSTANTIATE_TEST_SUITE_P(RmtEval, ShippedCheckpoint,
                         ::testing::Values("rmt-memorize-minilm", "rmt-detect-minilm", "rmt-reason-minilm",
                                           "rmtdec-qa1-smollm2"));

// Probes ask the question of the memory as it is, every N segments, and leave it as it was: the answers at the
// end are the answers of a run without probes; each probe is the answer of an input that ends there (its next
// segment cut short and the question after it); probes after every supporting fact count by segments held.
// (That a probe is exactly a run that ends with its segment: Rmt.ProbeIsARunThatEndsThere.)
TEST(RmtEval, ProbesLeaveTheMemoryAndAnswerAsIfTheInputEndedThere) {
  const std::string corpus = std::string(MNEMO_DATA_DIR) + "/corpus";
  if (!file_exists(kMiniLM + "/vocab.txt") || !file_exists(corpus + "/test.jsonl"))
    GTEST_SKIP() << "MiniLM or the corpus missing (scripts/setup, mnemo data fetch)";
  Progress::set_quiet(true);
  auto tok = load_tokenizer(kMiniLM);
  auto m = tiny_rmt_with_bert_vocab();
  for (auto& p : m->backbone().params().all())  // weights 15x HF's scale: answers that depend on the input
    if (p.name.find("LayerNorm") == std::string::npos)
      for (int64_t i = 0; i < p.value.numel(); ++i) p.value[i] *= 15.0f;
  RmtGenerateOptions g;
  g.task = "detect", g.segments = 7, g.count = 8, g.batch = 3, g.seed = 3, g.corpus_dir = corpus;
  const RmtEvalResult plain = eval_rmt_generated(*m, *tok, g);
  g.probe_every = 2;
  const RmtEvalResult probed = eval_rmt_generated(*m, *tok, g);
  ASSERT_EQ(probed.samples.size(), 8u);
  EXPECT_EQ(probed.correct, plain.correct);
  EXPECT_EQ(probed.segments, plain.segments);
  int64_t after_fact = 0;
  for (size_t i = 0; i < probed.samples.size(); ++i) {
    const auto& s = probed.samples[i];
    EXPECT_EQ(s.prediction, plain.samples[i].prediction);
    ASSERT_EQ(s.probes.size(), 3u);  // after 2, 4 and 6 of the 7 segments
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(s.probes[k].first, int64_t(2 * (k + 1)));
    for (auto& pr : s.probes) after_fact += s.fact_positions[0] / 16 < pr.first;
  }
  int64_t counted = 0;
  for (auto& [lo, cc] : probed.probes_held) {
    counted += cc.first;
    EXPECT_LE(cc.second, cc.first);
  }
  EXPECT_EQ(counted, after_fact);
  EXPECT_TRUE(plain.probes_held.empty());

  // The probe after 6 of 7 segments reads the last segment's first 16 - q tokens and then the question: the
  // last segment itself, so it answers what the run answers.
  for (size_t i = 0; i < probed.samples.size(); ++i)
    EXPECT_EQ(probed.samples[i].probes[2].second, plain.samples[i].prediction) << "sample " << i;

  g.probe_every = -1;
  EXPECT_THROW(eval_rmt_generated(*m, *tok, g), Error);

  // A task file: the same probes, the facts it lists counted as supporting; its last segment may be short, and the
  // last probe still reads exactly it.
  const std::string path = join_path(scratch_dir(), "probe.jsonl");
  Json rec = Json::object();
  rec["input"] = "Mary went to the office. " + std::string(60, 'x') + " The sky is blue over the sea and the land. "
                 "The man saw a ship near the town where people lived in small houses by the sea.";
  rec["question"] = "Where is Mary?";
  rec["target"] = "office";
  Json f = Json::array(), pos = Json::array();
  f.push_back("Mary went to the office.");
  pos.push_back(0);
  rec["facts"] = f;
  rec["fact_positions"] = pos;
  atomic_write(path, rec.dump() + "\n");
  const RmtEvalResult fp = eval_rmt_file(*m, *tok, path, 1), fq = eval_rmt_file(*m, *tok, path, 1, 1);
  const int64_t S = (fq.samples[0].tokens + 15) / 16;
  ASSERT_GE(S, 3);
  ASSERT_EQ(int64_t(fq.samples[0].probes.size()), S - 1);
  EXPECT_EQ(fq.samples[0].probes.back().second, fp.samples[0].prediction);  // the last probe reads the last segment
  EXPECT_EQ(fq.samples[0].prediction, fp.samples[0].prediction);
  int64_t held = 0;
  for (auto& [lo, cc] : fq.probes_held) held += cc.first;
  EXPECT_EQ(held, S - 1);  // the fact is in segment 0: every probe comes after it
}

// Fine-tuning a decoder on a task file (train/qa_trainer.h) with a tiny random Llama and SmolLM2's real tokenizer
// (from the GGUF scripts/setup fetches): the prompt is eval qa's, the loss falls on the reply, training lowers it,
// a stopped and resumed run gives the same losses, and bad runs are clear errors.
#include "train/qa_trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/file.h"
#include "base/progress.h"
#include "io/gguf_tokenizer.h"
#include "io/llama_loader.h"
#include "tasks/qa_prompt.h"
#include "scratch.h"

namespace mnemo {
namespace {

const std::string kGguf = std::string(MNEMO_DATA_DIR) + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";

// A 2-layer Llama with SmolLM2's vocabulary, saved as an HF directory.
std::string tiny_llama_dir(const std::string& root, int64_t context = 128) {
  LlamaConfig c;
  c.num_hidden_layers = 2, c.hidden_size = 16, c.num_attention_heads = 2, c.num_key_value_heads = 1;
  c.intermediate_size = 32, c.max_position_embeddings = context;
  Llama m(c);
  m.init_random(7);
  const std::string dir = join_path(root, "base");
  save_llama_dir(dir, m);
  return dir;
}

// Short stories whose answer is where the asked person went last.
std::string write_task_file(const std::string& root, int n, const std::string& name = "train.jsonl") {
  const char* people[] = {"Mary", "John", "Sandra"};
  const char* places[] = {"kitchen", "garden", "office"};
  std::string text;
  for (int i = 0; i < n; ++i) {
    const int p = i % 3, a = (i / 3) % 3, b = (a + 1 + i % 2) % 3;
    text += cat("{\"input\": \"", people[p], " went to the ", places[a], ". ", people[(p + 1) % 3], " moved to the ",
                places[b], ".\", \"question\": \"Where is ", people[p], "?\", \"target\": \"", places[a], "\"}\n");
  }
  const std::string path = join_path(root, name);
  std::ofstream(path) << text;
  return path;
}

QaTrainConfig tiny_config(const std::string& root) {
  QaTrainConfig c;
  c.init = tiny_llama_dir(root);
  c.tokenizer = kGguf;
  c.data = write_task_file(root, 18);
  c.steps = 10, c.batch = 4, c.micro_batch = 2;
  c.lr = 3e-2, c.warmup = 2;
  c.freeze_embeddings = false;  // random embeddings: nothing pretrained to keep
  c.eval_every = 5, c.val_count = 6;
  return c;
}

TEST(QaPrompt, ChatMlPromptAndReply) {
  if (!file_exists(kGguf)) GTEST_SKIP() << kGguf << " not present (scripts/setup fetches it)";
  auto tok = load_any_tokenizer(kGguf);
  tasks::TaskRecord rec;
  rec.input = "Mary went to the kitchen.";
  rec.question = "Where is Mary?";
  rec.target = "kitchen";
  const int32_t start = tok->special_id("<|im_start|>"), end = tok->special_id("<|im_end|>");
  tasks::QaPrompt p = tasks::qa_prompt(*tok, rec, tasks::QaTemplate::ChatMl);
  EXPECT_EQ(p.context.front(), start);
  EXPECT_EQ(tok->decode(p.context), cat("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                                        "Hugging Face<|im_end|>\n<|im_start|>user\nMary went to the kitchen."));
  EXPECT_EQ(tok->decode(p.question), "\nWhere is Mary?<|im_end|>\n<|im_start|>assistant\n");
  std::vector<int32_t> a = tasks::qa_answer(*tok, rec.target, tasks::QaTemplate::ChatMl, 2);
  EXPECT_EQ(a.back(), end);
  EXPECT_EQ(tok->decode(std::vector<int32_t>(a.begin(), a.end() - 1)), "kitchen");
  std::vector<int32_t> plain = tasks::qa_answer(*tok, rec.target, tasks::QaTemplate::Plain, 2);
  EXPECT_EQ(plain.back(), 2);
  EXPECT_EQ(tok->decode(tasks::qa_prompt(*tok, rec, tasks::QaTemplate::Plain).question), "\nWhere is Mary?\nAnswer:");
  EXPECT_TRUE(tasks::qa_correct(" The Kitchen.", "kitchen"));
  EXPECT_FALSE(tasks::qa_correct("garden", "kitchen"));
  EXPECT_FALSE(tasks::qa_correct("anything", ""));
  EXPECT_THROW(tasks::parse_qa_template("alpaca"), Error);
}

TEST(QaTrainer, LowersTheReplyLossAndResumesExactly) {
  if (!file_exists(kGguf)) GTEST_SKIP() << kGguf << " not present (scripts/setup fetches it)";
  Progress::set_quiet(true);
  const std::string root = scratch_dir() + "/resume";
  QaTrainConfig c = tiny_config(root);
  const std::string whole = join_path(root, "whole"), split = join_path(root, "split");

  QaTrainSummary a = train_qa(c, whole, false);
  ASSERT_EQ(a.losses.size(), 10u);
  EXPECT_TRUE(a.finished);
  EXPECT_LT(a.losses.back(), 0.7 * a.losses.front()) << "training did not lower the reply loss";
  // The fine-tuned model is an HF Llama directory with the tokenizer: what eval qa reads.
  auto dec = load_decoder(join_path(whole, "final"), 64);
  EXPECT_EQ(dec->vocab_size(), 49152);
  EXPECT_TRUE(file_exists(join_path(whole, "final/tokenizer.json")));
  EXPECT_EQ(load_any_tokenizer(join_path(whole, "final"))->vocab_size(), load_any_tokenizer(kGguf)->vocab_size());

  QaTrainSummary b1 = train_qa(c, split, false, 4);
  EXPECT_FALSE(b1.finished);
  EXPECT_FALSE(file_exists(join_path(split, "final/config.json")));
  QaTrainSummary b2 = train_qa(QaTrainConfig{}, split, true);  // the configuration comes from the checkpoint
  EXPECT_TRUE(b2.finished);
  std::vector<double> joined = b1.losses;
  joined.insert(joined.end(), b2.losses.begin(), b2.losses.end());
  EXPECT_EQ(joined, a.losses);
  EXPECT_EQ(b2.val_loss, a.val_loss);
  EXPECT_EQ(read_file(join_path(split, "log.jsonl")).size() > 0, true);
}

TEST(QaTrainer, BadRunsAreClearErrors) {
  if (!file_exists(kGguf)) GTEST_SKIP() << kGguf << " not present (scripts/setup fetches it)";
  Progress::set_quiet(true);
  const std::string root = scratch_dir() + "/errors";
  QaTrainConfig c = tiny_config(root);
  c.steps = 1, c.batch = 1, c.val_count = 1;
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { train_qa(c, join_path(root, "none"), true); }).find("no checkpoint to resume"),
            std::string::npos);
  train_qa(c, join_path(root, "once"), false);
  EXPECT_NE(message([&] { train_qa(c, join_path(root, "once"), false); }).find("a run is already here"),
            std::string::npos);

  QaTrainConfig empty = c;
  empty.data = join_path(root, "empty.jsonl");
  std::ofstream(empty.data) << "\n";
  EXPECT_NE(message([&] { train_qa(empty, join_path(root, "e"), false); }).find("empty.jsonl"), std::string::npos);

  QaTrainConfig longer = c;  // a record beyond the model's context of 128 tokens
  std::string story;
  for (int i = 0; i < 60; ++i) story += "Mary went to the kitchen. ";
  longer.data = join_path(root, "long.jsonl");
  std::ofstream(longer.data) << "{\"input\": \"" << story << "\", \"question\": \"Where is Mary?\", \"target\": \"kitchen\"}\n";
  const std::string m = message([&] { train_qa(longer, join_path(root, "l"), false); });
  EXPECT_NE(m.find("long.jsonl:1"), std::string::npos) << m;
  EXPECT_NE(m.find("context of 128"), std::string::npos) << m;

  QaTrainConfig bad = c;
  bad.templ = "alpaca";
  EXPECT_NE(message([&] { train_qa(bad, join_path(root, "t"), false); }).find("--template"), std::string::npos);
  bad = c;
  bad.micro_batch = 0;
  EXPECT_NE(message([&] { train_qa(bad, join_path(root, "mb"), false); }).find("--micro-batch"), std::string::npos);
  EXPECT_FALSE(file_exists(join_path(root, "t"))) << "a refused run leaves no directory";
}

}  // namespace
}  // namespace mnemo

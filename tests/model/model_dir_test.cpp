// Model directories: save/load round trips, the name variants found in the wild, and bad input (one-line errors
// naming the file and the tensor).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "io/model_dir.h"
#include "scratch.h"

namespace mnemo {
namespace {

Gpt2Config tiny_gpt2() {
  Gpt2Config c;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 8, c.n_positions = 8, c.vocab_size = 13;
  return c;
}

BertConfig tiny_bert(BertHead head) {
  BertConfig c;
  c.num_hidden_layers = 2, c.hidden_size = 8, c.num_attention_heads = 2, c.intermediate_size = 12;
  c.max_position_embeddings = 8, c.vocab_size = 11, c.num_labels = 3, c.head = head;
  return c;
}

void expect_same(const ParameterSet& a, const ParameterSet& b) {
  ASSERT_EQ(a.size(), b.size());
  for (int64_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].name, b[i].name);
    ASSERT_EQ(a[i].value.shape(), b[i].value.shape());
    for (int64_t k = 0; k < a[i].value.numel(); ++k) ASSERT_EQ(a[i].value[k], b[i].value[k]) << a[i].name;
  }
}

// Runs fn, which must throw Error whose message names every string in `want`.
template <typename F>
void expect_error(F fn, std::vector<std::string> want) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    for (auto& w : want) EXPECT_NE(m.find(w), std::string::npos) << "'" << w << "' not in: " << m;
  }
}

TEST(ModelDir, Gpt2RoundTripTransposesConv1D) {
  Gpt2 m(tiny_gpt2());
  m.init_random(7);
  const std::string dir = scratch_dir() + "/gpt2";
  save_model_dir(dir, m);
  SafetensorsFile f(join_path(dir, "model.safetensors"));
  EXPECT_EQ(f.entry("transformer.h.0.mlp.c_fc.weight").shape, (Shape{8, 32}));  // Conv1D (in, out) on disk
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_FALSE(f.contains("lm_head.weight"));
  const Parameter& w = *m.params().find("transformer.h.0.mlp.c_fc.weight");  // (32, 8) here
  Tensor disk = f.tensor("transformer.h.0.mlp.c_fc.weight");
  EXPECT_EQ(disk[3 * 32 + 5], w.value[5 * 8 + 3]);
  LoadedModel back = load_model_dir(dir);
  ASSERT_TRUE(back.gpt2);
  expect_same(m.params(), back.gpt2->params());
}

TEST(ModelDir, BertRoundTripsEveryHead) {
  for (BertHead h : {BertHead::None, BertHead::MaskedLM, BertHead::SequenceClassification}) {
    Bert m(tiny_bert(h));
    m.init_random(8);
    const std::string dir = scratch_dir() + "/bert" + std::to_string(int(h));
    save_model_dir(dir, m);
    auto back = load_bert(dir);
    EXPECT_EQ(back->config().head, h);
    expect_same(m.params(), back->params());
  }
}

// MiniLM's BertModel names have no "bert." prefix; a BertForMaskedLM config over them still loads.
TEST(ModelDir, BertAcceptsNamesWithOrWithoutPrefix) {
  Bert plain(tiny_bert(BertHead::None));
  plain.init_random(9);
  std::vector<SafetensorsItem> items;
  for (auto& it : parameter_items(plain.params()))
    if (it.name.find("pooler") == std::string::npos) items.push_back(it);
  Bert mlm(tiny_bert(BertHead::MaskedLM));
  mlm.init_random(10);
  for (auto& it : parameter_items(mlm.params()))
    if (it.name.rfind("cls.", 0) == 0) items.push_back(it);
  const std::string dir = scratch_dir();
  save_safetensors(join_path(dir, "model.safetensors"), items, {{"format", "pt"}});
  atomic_write(join_path(dir, "config.json"), mlm.config().to_json().dump());
  auto back = load_bert(dir);
  EXPECT_EQ(back->params().find("bert.embeddings.word_embeddings.weight")->value[3],
            plain.params().find("embeddings.word_embeddings.weight")->value[3]);
}

TEST(ModelDir, RealMiniLmLoads) {
  const std::string dir = std::string(MNEMO_DATA_DIR) + "/models/minilm-l6-h384";
  if (!file_exists(dir + "/model.safetensors")) GTEST_SKIP() << dir << " not set up (scripts/setup fetches it)";
  auto m = load_bert(dir);
  EXPECT_EQ(m->config().num_hidden_layers, 6);
  EXPECT_EQ(m->config().hidden_size, 384);
  EXPECT_NE(m->params().find("pooler.dense.weight"), nullptr);
}

class BadModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    Gpt2 m(tiny_gpt2());
    m.init_random(11);
    dir = scratch_dir() + "/bad";
    save_model_dir(dir, m);
    items = parameter_items(m.params());
    weights = join_path(dir, "model.safetensors");
    config = join_path(dir, "config.json");
  }
  void rewrite(const std::function<void(std::vector<SafetensorsItem>&)>& edit) {
    auto copy = items;
    edit(copy);
    save_safetensors(weights, copy, {{"format", "pt"}});
  }
  std::string dir, weights, config;
  std::vector<SafetensorsItem> items;
};

TEST_F(BadModelDir, MissingTensor) {
  rewrite([](auto& v) {
    std::erase_if(v, [](const SafetensorsItem& it) { return it.name == "transformer.h.1.ln_2.bias"; });
  });
  expect_error([&] { load_model_dir(dir); }, {weights, "transformer.h.1.ln_2.bias", "missing"});
}

TEST_F(BadModelDir, WrongShape) {
  rewrite([](auto& v) {
    for (auto& it : v)
      if (it.name == "transformer.wpe.weight") it.tensor = Tensor::zeros({7, 8});
  });
  expect_error([&] { load_model_dir(dir); }, {weights, "transformer.wpe.weight", "[7, 8]", "[8, 8]"});
}

TEST_F(BadModelDir, WrongDtype) {
  rewrite([](auto& v) {
    for (auto& it : v)
      if (it.name == "transformer.ln_f.weight")
        it = SafetensorsItem::raw(it.name, DType::I32, {8}, std::string(8 * 4, '\0'));
  });
  expect_error([&] { load_model_dir(dir); }, {weights, "transformer.ln_f.weight", "I32"});
}

TEST_F(BadModelDir, HalfPrecisionIsConverted) {
  rewrite([](auto& v) {
    for (auto& it : v) it.dtype = DType::BF16;
  });
  LoadedModel m = load_model_dir(dir);
  // bf16 keeps 8 bits of mantissa: relative error below 2^-8.
  const float a = m.gpt2->params().find("transformer.wte.weight")->value[5], b = items[0].tensor[5];
  EXPECT_NEAR(a, b, std::fabs(b) * 0.004f + 1e-30f);
}

TEST_F(BadModelDir, TruncatedWeights) {
  std::string bytes = read_file(weights);
  atomic_write(weights, std::string_view(bytes).substr(0, bytes.size() - 100));
  expect_error([&] { load_model_dir(dir); }, {weights});
}

TEST_F(BadModelDir, GarbageWeights) {
  atomic_write(weights, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{not json", 17));
  expect_error([&] { load_model_dir(dir); }, {weights});
}

TEST_F(BadModelDir, MissingWeights) {
  std::remove(weights.c_str());
  expect_error([&] { load_model_dir(dir); }, {weights, "missing"});
}

TEST_F(BadModelDir, MalformedConfig) {
  atomic_write(config, "{\"model_type\": \"gpt2\", \"n_layer\": ");
  expect_error([&] { load_model_dir(dir); }, {config});
  atomic_write(config, R"({"model_type": "gpt2", "n_layer": 3, "n_head": 2, "n_embd": 8, "n_positions": 8,
                          "vocab_size": 13})");
  // The config now asks for a third block the weights do not have.
  expect_error([&] { load_model_dir(dir); }, {weights, "transformer.h.2."});
  atomic_write(config, R"({"model_type": "llama"})");
  expect_error([&] { load_model_dir(dir); }, {config, "llama"});
  std::remove(config.c_str());
  expect_error([&] { load_model_dir(dir); }, {config, "missing"});
  expect_error([&] { load_model_dir(dir + "/nope"); }, {dir + "/nope"});
}

}  // namespace
}  // namespace mnemo

#include "io/llama_loader.h"

#include <cstring>

#include "base/error.h"
#include "base/file.h"
#include "io/gguf.h"
#include "io/model_dir.h"

namespace mnemo {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

// ---------------------------------------------------------------- GGUF

namespace {

// GGUF metadata -> config. Typed access names the file and the key on a missing key or a wrong type.
LlamaConfig config_from_gguf(const GgufFile& f) {
  const std::string& path = f.path();
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama")
    throw Error(cat(path, ": general.architecture is \"", arch, "\", not llama"));
  const std::string p = "llama.";
  LlamaConfig c;
  c.num_hidden_layers = f.get_int(p + "block_count");
  c.hidden_size = f.get_int(p + "embedding_length");
  c.intermediate_size = f.get_int(p + "feed_forward_length");
  c.num_attention_heads = f.get_int(p + "attention.head_count");
  c.num_key_value_heads = f.int_or(p + "attention.head_count_kv", c.num_attention_heads);
  c.max_position_embeddings = f.get_int(p + "context_length");
  c.rms_norm_eps = float(f.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rope_theta = float(f.float_or(p + "rope.freq_base", 10000.0));
  if (c.num_attention_heads <= 0) throw Error(cat(path, ": ", p, "attention.head_count must be positive"));
  const int64_t hd = f.int_or(p + "attention.key_length", c.hidden_size / c.num_attention_heads);
  if (f.int_or(p + "attention.value_length", hd) != hd)
    throw Error(cat(path, ": ", p, "attention.value_length differs from the key length ", hd, " (unsupported)"));
  c.head_dim = hd == c.hidden_size / c.num_attention_heads ? 0 : hd;
  const int64_t rot = f.int_or(p + "rope.dimension_count", hd);
  if (rot != hd)
    throw Error(cat(path, ": ", p, "rope.dimension_count ", rot, " differs from the head size ", hd,
                    " (partial rotary is not supported)"));
  const std::string scaling = f.string_or(p + "rope.scaling.type", "none");
  if (scaling == "linear") {
    c.rope_linear_factor = float(f.get_float(p + "rope.scaling.factor"));
  } else if (scaling != "none") {
    throw Error(cat(path, ": ", p, "rope.scaling.type \"", scaling, "\" is not supported (none or linear)"));
  }
  c.vocab_size = f.tensor("token_embd.weight").shape.at(0);
  if (f.has(p + "vocab_size") && f.get_int(p + "vocab_size") != c.vocab_size)
    throw Error(cat(path, ": ", p, "vocab_size ", f.get_int(p + "vocab_size"), " disagrees with token_embd.weight ",
                    shape_str(f.tensor("token_embd.weight").shape)));
  c.tie_word_embeddings = !f.has_tensor("output.weight");
  c.bos_token_id = f.int_or("tokenizer.ggml.bos_token_id", c.bos_token_id);
  c.eos_token_id = f.int_or("tokenizer.ggml.eos_token_id", c.eos_token_id);
  c.validate(path);
  return c;
}

// What keeps GGUF weights alive: the mapped file, re-ordered row copies, fp32 norms.
struct GgufOwner {
  std::shared_ptr<GgufFile> file;
  std::vector<std::vector<uint8_t>> copies;
  std::vector<Tensor> norms;
};

// The tensor NAME as a (rows, cols) matrix of a type mnemo reads, checked against the config.
WeightRef matrix(const GgufFile& f, const std::string& name, int64_t rows, int64_t cols) {
  const GgufTensor& t = f.tensor(name);
  if (t.shape != Shape{rows, cols})
    throw Error(cat(f.path(), ": tensor '", name, "' has shape ", shape_str(t.shape), ", the config implies ",
                    shape_str(Shape{rows, cols})));
  if (!qtype_dequantizable(t.type))
    throw Error(cat(f.path(), ": tensor '", name, "' has type ", qtype_name(uint32_t(t.type)),
                    ", which mnemo cannot read"));
  if (cols % qtype_block_size(t.type))
    throw Error(cat(f.path(), ": tensor '", name, "' rows of ", cols, " values are not whole ",
                    qtype_name(uint32_t(t.type)), " blocks"));
  WeightRef w;
  w.type = t.type, w.data = t.data, w.rows = rows, w.cols = cols;
  return w;
}

// llama.cpp's converter stores q/k rows of each head as (hd/2, 2) pairs, HF as (2, hd/2): copy the rows back.
// HF row h*hd + j*hd/2 + i is GGUF row h*hd + 2i + j.
WeightRef unpermute_rows(const WeightRef& w, int64_t heads, GgufOwner& owner) {
  const int64_t hd = w.rows / heads, half = hd / 2, rb = row_bytes(w.type, w.cols);
  std::vector<uint8_t> out(size_t(w.rows * rb));
  const auto* src = static_cast<const uint8_t*>(w.data);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i)
        std::memcpy(out.data() + (h * hd + j * half + i) * rb, src + (h * hd + 2 * i + j) * rb, size_t(rb));
  owner.copies.push_back(std::move(out));
  WeightRef r = w;
  r.data = owner.copies.back().data();
  return r;
}

const float* norm(const GgufFile& f, const std::string& name, int64_t C, GgufOwner& owner) {
  owner.norms.push_back(f.to_fp32(name, {C}));
  return owner.norms.back().data();
}

}  // namespace

LoadedLlama load_llama_gguf(const std::string& path) {
  auto owner = std::make_shared<GgufOwner>();
  owner->file = std::make_shared<GgufFile>(path);
  const GgufFile& f = *owner->file;
  LoadedLlama out;
  out.source = path;
  LlamaConfig c = config_from_gguf(f);
  out.config = c;
  const int64_t C = c.hidden_size, hd = c.hd(), H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const int64_t I = c.intermediate_size, V = c.vocab_size;
  owner->copies.reserve(size_t(2 * c.num_hidden_layers));  // pointers into copies stay valid
  owner->norms.reserve(size_t(2 * c.num_hidden_layers + 1));
  LlamaWeights& w = out.weights;
  w.embed = matrix(f, "token_embd.weight", V, C);
  w.lm_head = c.tie_word_embeddings ? w.embed : matrix(f, "output.weight", V, C);
  w.norm = norm(f, "output_norm.weight", C, *owner);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string b = cat("blk.", l, ".");
    LlamaWeights::Layer L;
    L.attn_norm = norm(f, b + "attn_norm.weight", C, *owner);
    L.ffn_norm = norm(f, b + "ffn_norm.weight", C, *owner);
    L.q = unpermute_rows(matrix(f, b + "attn_q.weight", H * hd, C), H, *owner);
    L.k = unpermute_rows(matrix(f, b + "attn_k.weight", Hkv * hd, C), Hkv, *owner);
    L.v = matrix(f, b + "attn_v.weight", Hkv * hd, C);
    L.o = matrix(f, b + "attn_output.weight", C, H * hd);
    L.gate = matrix(f, b + "ffn_gate.weight", I, C);
    L.up = matrix(f, b + "ffn_up.weight", I, C);
    L.down = matrix(f, b + "ffn_down.weight", C, I);
    w.layers.push_back(L);
  }
  w.owner = owner;
  return out;
}

std::unique_ptr<Llama> llama_from_gguf(const std::string& path) {
  LoadedLlama g = load_llama_gguf(path);
  auto m = std::make_unique<Llama>(g.config);
  // Parameters in declaration order (llama_parameter_shapes), each filled from its GGUF counterpart.
  std::vector<WeightRef> mats;
  std::vector<const float*> vecs;
  mats.push_back(g.weights.embed);
  for (const auto& L : g.weights.layers) {
    vecs.push_back(L.attn_norm);
    for (const WeightRef* r : {&L.q, &L.k, &L.v, &L.o}) mats.push_back(*r);
    vecs.push_back(L.ffn_norm);
    for (const WeightRef* r : {&L.gate, &L.up, &L.down}) mats.push_back(*r);
  }
  vecs.push_back(g.weights.norm);
  if (!g.config.tie_word_embeddings) mats.push_back(g.weights.lm_head);
  size_t mi = 0, vi = 0;
  for (auto& p : m->params().all()) {
    if (p.value.rank() == 1) {
      std::memcpy(p.value.data(), vecs[vi++], size_t(p.value.numel()) * sizeof(float));
    } else {
      const WeightRef& r = mats[mi++];
      MNEMO_CHECK(r.rows == p.value.dim(0) && r.cols == p.value.dim(1), "llama_from_gguf order at ", p.name);
      dequantize_rows(r.type, r.data, p.value.data(), r.rows, r.cols);
    }
  }
  MNEMO_CHECK(mi == mats.size() && vi == vecs.size(), "llama_from_gguf: parameter count");
  return m;
}

bool is_gguf_path(const std::string& path) { return ends_with(path, ".gguf") || ends_with(path, ".GGUF"); }

LoadedLlama load_llama(const std::string& path) {
  if (is_gguf_path(path)) return load_llama_gguf(path);
  std::shared_ptr<Llama> m = load_llama_dir(path);
  LoadedLlama out;
  out.config = m->config();
  out.weights = m->weights();
  out.weights.owner = m;
  out.model = m;
  out.source = path;
  return out;
}

namespace {
// Keeps what a decoder reads alive alongside it.
template <typename Inner, typename Model>
class Owning : public Decoder {
 public:
  Owning(std::shared_ptr<Model> m, std::unique_ptr<Inner> d) : m_(std::move(m)), d_(std::move(d)) {}
  int64_t vocab_size() const override { return d_->vocab_size(); }
  int64_t context_length() const override { return d_->context_length(); }
  int n_layer() const override { return d_->n_layer(); }
  int64_t n_kv_head() const override { return d_->n_kv_head(); }
  int64_t head_dim() const override { return d_->head_dim(); }
  int64_t max_batch() const override { return d_->max_batch(); }
  int64_t eos_token_id() const override { return d_->eos_token_id(); }
  void forward(const int32_t* ids, int64_t n, int64_t pos, KvCache& cache, float* logits, bool all_logits,
               const LayerObserver* observer) override {
    d_->forward(ids, n, pos, cache, logits, all_logits, observer);
  }

 private:
  std::shared_ptr<Model> m_;
  std::unique_ptr<Inner> d_;
};
}  // namespace

std::unique_ptr<Decoder> load_decoder(const std::string& path, int64_t max_batch, int64_t max_context) {
  if (!is_gguf_path(path)) {
    Json j = read_config(path);
    if (j.string_or("model_type", "") != "llama") {
      std::shared_ptr<Gpt2> g = load_gpt2(path);
      auto d = make_gpt2_decoder(*g);
      return std::make_unique<Owning<Decoder, Gpt2>>(g, std::move(d));
    }
  }
  LoadedLlama l = load_llama(path);
  return std::make_unique<LlamaRunner>(l.config, l.weights, max_batch, max_context);
}

std::unique_ptr<Llama> load_llama_dir(const std::string& dir) {
  Json j = read_config(dir);
  const std::string cpath = join_path(dir, "config.json");
  const std::string type = j.string_or("model_type", "");
  if (type != "llama") throw Error(cat(cpath, ": model_type \"", type, "\" is not a Llama model"));
  auto model = std::make_unique<Llama>(LlamaConfig::from_json(j, cpath));
  const std::string wpath = join_path(dir, "model.safetensors");
  if (!file_exists(wpath)) throw Error(cat(wpath, ": missing"));
  SafetensorsFile file(wpath);
  // Checkpoints without "model." (LlamaModel rather than LlamaForCausalLM) load too.
  load_parameters(model->params(), file, [](const std::string& name) {
    std::vector<std::string> alts;
    if (name.rfind("model.", 0) == 0) alts.push_back(name.substr(6));
    return alts;
  });
  return model;
}

void save_llama_dir(const std::string& dir, const Llama& model, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw Error(cat(dir, ": weights can be saved as F32, BF16 or F16, not ", dtype_name(dtype)));
  make_directories(dir);
  std::vector<SafetensorsItem> items = parameter_items(model.params());
  for (auto& it : items) it.dtype = dtype;
  Json cfg = model.config().to_json();
  cfg["torch_dtype"] = dtype == DType::F32 ? "float32" : dtype == DType::BF16 ? "bfloat16" : "float16";
  save_safetensors(join_path(dir, "model.safetensors"), items, {{"format", "pt"}});
  atomic_write(join_path(dir, "config.json"), cfg.dump(2) + "\n");
}

namespace {

// tokenizer.json (Hugging Face tokenizers) for a byte-level BPE held in GGUF metadata. GGUF stores tokens already
// in the byte-to-unicode alphabet of GPT-2's byte-level BPE, and merges as "a b" lines, as tokenizer.json does.
Json tokenizer_json(const GgufFile& f) {
  const std::string& path = f.path();
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    throw Error(cat(path, ": tokenizer.ggml.model \"", model, "\" cannot be converted (byte-level BPE \"gpt2\" only)"));
  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  const std::vector<std::string> merges = f.get_string_array("tokenizer.ggml.merges");
  std::vector<int64_t> types(tokens.size(), 1);
  if (f.has("tokenizer.ggml.token_type")) types = f.get_int_array("tokenizer.ggml.token_type");
  if (types.size() != tokens.size())
    throw Error(cat(path, ": tokenizer.ggml.token_type has ", types.size(), " entries for ", tokens.size(), " tokens"));
  const std::string pre = f.string_or("tokenizer.ggml.pre", "default");

  auto byte_level = [](bool prefix) {
    Json b = Json::object();
    b["type"] = "ByteLevel";
    b["add_prefix_space"] = prefix;
    b["trim_offsets"] = true;
    b["use_regex"] = true;
    return b;
  };
  Json j = Json::object();
  j["version"] = "1.0";
  j["truncation"] = Json();
  j["padding"] = Json();
  Json added = Json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] != 3 && types[i] != 4) continue;  // CONTROL and USER_DEFINED tokens are matched whole
    Json a = Json::object();
    a["id"] = int64_t(i);
    a["content"] = tokens[i];
    a["single_word"] = false;
    a["lstrip"] = false;
    a["rstrip"] = false;
    a["normalized"] = types[i] == 4;
    a["special"] = types[i] == 3;
    added.push_back(a);
  }
  j["added_tokens"] = added;
  j["normalizer"] = Json();
  if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
    // Digits split one by one before the byte-level regex (what llama.cpp's "smollm" pre-tokenizer does).
    Json seq = Json::object();
    seq["type"] = "Sequence";
    Json digits = Json::object();
    digits["type"] = "Digits";
    digits["individual_digits"] = true;
    seq["pretokenizers"] = Json(Json::Array{digits, byte_level(false)});
    j["pre_tokenizer"] = seq;
  } else if (pre == "gpt2" || pre == "default") {
    j["pre_tokenizer"] = byte_level(false);
  } else {
    throw Error(cat(path, ": tokenizer.ggml.pre \"", pre, "\" cannot be converted (smollm, starcoder, gpt2)"));
  }
  Json post = byte_level(true);
  post["trim_offsets"] = false;
  j["post_processor"] = post;
  j["decoder"] = byte_level(true);
  Json m = Json::object();
  m["type"] = "BPE";
  m["dropout"] = Json();
  m["unk_token"] = Json();
  m["continuing_subword_prefix"] = Json();
  m["end_of_word_suffix"] = Json();
  m["fuse_unk"] = false;
  m["byte_fallback"] = false;
  Json vocab = Json::object();
  auto& vo = vocab.as_object();
  vo.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) vo.emplace_back(tokens[i], Json(int64_t(i)));
  m["vocab"] = std::move(vocab);
  Json mg = Json::array();
  auto& ma = mg.as_array();
  ma.reserve(merges.size());
  for (const auto& x : merges) ma.emplace_back(x);
  m["merges"] = std::move(mg);
  j["model"] = std::move(m);
  return j;
}

Json tokenizer_config_json(const GgufFile& f, int64_t context) {
  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  auto tok = [&](const char* key) -> Json {
    if (!f.has(key)) return Json();
    int64_t id = f.get_int(key);
    if (id < 0 || id >= int64_t(tokens.size())) throw Error(cat(f.path(), ": ", key, " ", id, " is not a token id"));
    return Json(tokens[size_t(id)]);
  };
  Json j = Json::object();
  j["tokenizer_class"] = "PreTrainedTokenizerFast";
  j["bos_token"] = tok("tokenizer.ggml.bos_token_id");
  j["eos_token"] = tok("tokenizer.ggml.eos_token_id");
  j["unk_token"] = tok("tokenizer.ggml.unknown_token_id");
  j["pad_token"] = tok("tokenizer.ggml.padding_token_id");
  j["add_bos_token"] = f.bool_or("tokenizer.ggml.add_bos_token", false);
  j["add_eos_token"] = f.bool_or("tokenizer.ggml.add_eos_token", false);
  j["clean_up_tokenization_spaces"] = false;
  j["model_max_length"] = context;
  if (f.has("tokenizer.chat_template")) j["chat_template"] = f.get_string("tokenizer.chat_template");
  return j;
}

}  // namespace

namespace {

// tokenizer.json and tokenizer_config.json of a GGUF file, built (and so checked) before anything is written.
std::pair<std::string, std::string> gguf_tokenizer_files(const std::string& gguf_path) {
  GgufFile f(gguf_path);
  const int64_t context = config_from_gguf(f).max_position_embeddings;
  return {tokenizer_json(f).dump() + "\n", tokenizer_config_json(f, context).dump(2) + "\n"};
}

void write_tokenizer_files(const std::pair<std::string, std::string>& files, const std::string& dir) {
  make_directories(dir);
  atomic_write(join_path(dir, "tokenizer.json"), files.first);
  atomic_write(join_path(dir, "tokenizer_config.json"), files.second);
}

}  // namespace

void write_gguf_tokenizer_files(const std::string& gguf_path, const std::string& dir) {
  write_tokenizer_files(gguf_tokenizer_files(gguf_path), dir);
}

void convert_gguf_to_dir(const std::string& gguf_path, const std::string& dir, DType dtype) {
  std::unique_ptr<Llama> m = llama_from_gguf(gguf_path);
  // Build the tokenizer files first: a GGUF whose tokenizer cannot be converted leaves no directory behind.
  const auto files = gguf_tokenizer_files(gguf_path);
  save_llama_dir(dir, *m, dtype);
  write_tokenizer_files(files, dir);
}

}  // namespace mnemo

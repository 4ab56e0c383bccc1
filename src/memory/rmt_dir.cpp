#include "memory/rmt_dir.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sys/stat.h>

#include "base/error.h"
#include "base/file.h"
#include "io/llama_loader.h"
#include "io/model_dir.h"
#include "io/safetensors.h"

namespace mnemo {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

int64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error(cat(path, ": cannot stat"));
  return int64_t(st.st_size);
}

// Copy tensor `name` (or its alternative without "bert.") of `file` into p; false when the file has neither.
bool load_one(Parameter& p, const SafetensorsFile& file, const std::string& name) {
  std::string found;
  if (file.contains(name)) found = name;
  else if (file.contains(strip_bert_prefix(name))) found = strip_bert_prefix(name);
  if (found.empty()) return false;
  Tensor src = file.tensor(found, p.value.shape());  // fp32 (converted from F16/BF16 when stored so)
  std::memcpy(p.value.data(), src.data(), size_t(src.numel()) * sizeof(float));
  return true;
}

// Load the pretrained backbone tensors from a BERT directory's model.safetensors. Parameters the base lacks (the
// classifier of a BertModel) are left as they are and returned.
std::vector<std::string> load_base(RmtEncoder& model, const std::string& base_dir) {
  const std::string path = join_path(base_dir, "model.safetensors");
  if (!file_exists(path)) throw Error(cat(path, ": missing (the pretrained model the RMT starts from)"));
  SafetensorsFile file(path);
  std::vector<std::string> absent;
  for (auto& p : model.backbone().params().all()) {
    if (load_one(p, file, p.name)) continue;
    // The head is new; so is the pooler when the base was trained for masked-LM only (it has none): both keep
    // their random init, as transformers' BertForSequenceClassification.from_pretrained does.
    const bool fresh = starts_with(p.name, "classifier.") || starts_with(strip_bert_prefix(p.name), "pooler.");
    if (!fresh) throw Error(cat(path, ": missing tensor '", p.name, "'"));
    absent.push_back(p.name);
  }
  return absent;
}

std::string resolve(const std::string& dir, const std::string& ref) {
  return !ref.empty() && ref[0] == '/' ? ref : join_path(dir, ref);
}

// DIR/config.json's "rmt" object (`cpath` names the file in the error when there is none).
const Json& rmt_key(const Json& config, const std::string& cpath) {
  const Json* r = config.find("rmt");
  if (!r) throw Error(cat(cpath, ": no \"rmt\" key (not an RMT model directory)"));
  return *r;
}

// DIR/model.safetensors, an Error naming it when missing.
SafetensorsFile weights_of(const std::string& dir) {
  const std::string wpath = join_path(dir, "model.safetensors");
  if (!file_exists(wpath)) throw Error(cat(wpath, ": missing"));
  return SafetensorsFile(wpath);
}

// The model's rmt.memory from its weights file (both variants).
void load_memory(Parameter& mem, const SafetensorsFile& file) {
  if (!file.contains(mem.name)) throw Error(cat(file.path(), ": missing tensor '", mem.name, "'"));
  mem.value.copy_from(file.tensor(mem.name, mem.value.shape()));
}

// A delta directory's base: `base_file` (the file holding its weights) must exist and have the recorded size.
void check_delta_base(const std::string& cpath, const Json& rmt, const std::string& base_file) {
  if (!file_exists(base_file))
    throw Error(cat(cpath, ": rmt.delta_of '", rmt.string_or("delta_of", ""), "': ", base_file,
                    " is missing (run scripts/setup)"));
  const int64_t want = rmt.int_or("delta_of_bytes", -1);
  if (want >= 0 && file_size(base_file) != want)
    throw Error(cat(base_file, ": ", file_size(base_file), " bytes, but ", cpath, " was made against a base of ",
                    want, " bytes"));
}

// Adds each parameter's delta in `file` — "delta/NAME" (BF16), or "delta_sign/NAME" + "delta_row/NAME" +
// "delta_col/NAME" (1 bit: element (i, j) gains row[i] * col[j] * (bit ? +1 : -1)) — and returns the names of
// those that have none.
std::vector<std::string> add_deltas(ParameterSet& ps, const SafetensorsFile& file) {
  std::vector<std::string> without;
  for (auto& p : ps.all()) {
    if (file.contains("delta/" + p.name)) {
      Tensor delta = file.tensor("delta/" + p.name, p.value.shape());
      for (int64_t i = 0; i < delta.numel(); ++i) p.value[i] += delta[i];
    } else if (file.contains("delta_sign/" + p.name)) {
      const int64_t rows = p.value.shape()[0], cols = p.value.numel() / rows;
      const Tensor row = file.tensor("delta_row/" + p.name, Shape{rows});
      const Tensor col = file.tensor("delta_col/" + p.name, Shape{cols});
      const SafetensorsEntry& e = file.entry("delta_sign/" + p.name);
      if (e.dtype != DType::U8 || e.nbytes != size_t((p.value.numel() + 7) / 8))
        throw Error(cat(file.path(), ": tensor 'delta_sign/", p.name, "' is not ", (p.value.numel() + 7) / 8,
                        " bytes of U8"));
      for (int64_t i = 0; i < p.value.numel(); ++i)
        p.value[i] += ((e.data[i / 8] >> (i % 8) & 1) ? 1.0f : -1.0f) * row[i / cols] * col[i % cols];
    } else {
      without.push_back(p.name);
    }
  }
  return without;
}

// p - base, appended to items when it differs anywhere: BF16 ("delta/NAME"), or with bits == 1 and a matrix, its
// signs and a rank-1 magnitude (below), so a full fine-tune ships at 1 bit a parameter.
void push_delta(std::vector<SafetensorsItem>& items, const Parameter& p, const Tensor& base, int bits) {
  Tensor d = Tensor::zeros(p.value.shape());
  bool changed = false;
  for (int64_t i = 0; i < d.numel(); ++i) {
    d[i] = p.value[i] - base[i];
    changed |= d[i] != 0.0f;
  }
  if (!changed) return;
  if (bits != 1 || p.value.shape().size() != 2) {
    items.emplace_back("delta/" + p.name, d, DType::BF16);
    return;
  }
  // |delta| ~ row[i] * col[j], the rank-1 least-squares fit (alternating updates converge to |delta|'s leading
  // singular pair): Adam's steps are scaled per input feature as well as per output.
  const int64_t rows = d.shape()[0], cols = d.numel() / rows;
  Tensor row = Tensor::zeros({rows}), col = Tensor::zeros({cols});
  for (int64_t j = 0; j < cols; ++j) col[j] = 1.0f;
  for (int it = 0; it < 20; ++it) {
    double cc = 0, rr = 0;
    for (int64_t j = 0; j < cols; ++j) cc += double(col[j]) * col[j];
    for (int64_t i = 0; i < rows; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < cols; ++j) acc += std::fabs(d[i * cols + j]) * col[j];
      row[i] = float(acc / cc);
    }
    for (int64_t i = 0; i < rows; ++i) rr += double(row[i]) * row[i];
    std::vector<double> acc(size_t(cols), 0.0);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) acc[size_t(j)] += std::fabs(d[i * cols + j]) * row[i];
    for (int64_t j = 0; j < cols; ++j) col[j] = float(acc[size_t(j)] / rr);
  }
  std::string signs(size_t((d.numel() + 7) / 8), '\0');
  for (int64_t i = 0; i < d.numel(); ++i)
    if (d[i] >= 0.0f) signs[size_t(i / 8)] = char(uint8_t(signs[size_t(i / 8)]) | (1u << (i % 8)));
  items.push_back(SafetensorsItem::raw("delta_sign/" + p.name, DType::U8, Shape{int64_t(signs.size())}, signs));
  items.emplace_back("delta_row/" + p.name, row);
  items.emplace_back("delta_col/" + p.name, col);
}

void write_config(const std::string& dir, const RmtEncoder& model, const Json& extra_rmt) {
  Json j = model.backbone().config().to_json();
  Json r = model.config().to_json();
  for (auto& [k, v] : extra_rmt.as_object()) r[k] = v;
  j["rmt"] = r;
  // Readable label names for transformers too.
  Json id2label = Json::object(), label2id = Json::object();
  const auto& labels = model.config().labels;
  for (size_t i = 0; i < labels.size(); ++i) {
    id2label[std::to_string(i)] = labels[i];
    label2id[labels[i]] = int64_t(i);
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  atomic_write(join_path(dir, "config.json"), j.dump(2) + "\n");
}

}  // namespace

void copy_tokenizer_files(const std::string& from, const std::string& dir) {
  make_directories(dir);
  if (!is_directory(from)) {
    if (!file_exists(from)) return;
    const std::string base = from.substr(from.find_last_of('/') + 1);
    atomic_write(join_path(dir, base), read_file(from));
    return;
  }
  for (const char* f : {"vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    if (file_exists(join_path(from, f))) atomic_write(join_path(dir, f), read_file(join_path(from, f)));
}

std::string strip_bert_prefix(const std::string& name) {
  return starts_with(name, "bert.") ? name.substr(5) : name;
}

std::unique_ptr<RmtEncoder> rmt_from_pretrained(const std::string& bert_dir, const RmtConfig& rmt, uint64_t seed) {
  Json j = read_config(bert_dir);
  const std::string cpath = join_path(bert_dir, "config.json");
  if (model_type_of(j, cpath) != "bert") throw Error(cat(cpath, ": not a BERT model (the RMT encoder needs one)"));
  if (j.find("rmt")) {  // a trained RMT, full or a delta (a shipped model): go on from its weights and memory
    auto model = load_rmt(bert_dir);
    const RmtConfig& have = model->config();
    if (have.num_mem_tokens != rmt.num_mem_tokens || have.segment_tokens != rmt.segment_tokens ||
        have.labels != rmt.labels)
      throw Error(cat(cpath, ": this RMT has ", have.num_mem_tokens, " memory tokens, ", have.segment_tokens,
                      " tokens a segment and ", have.labels.size(), " labels; the run asks for ", rmt.num_mem_tokens,
                      ", ", rmt.segment_tokens, " and ", rmt.labels.size(), " (--mem, --segment-tokens, --task)"));
    return model;
  }
  BertConfig bc = BertConfig::from_json(j, cpath);
  bc.head = BertHead::SequenceClassification;
  bc.num_labels = int64_t(rmt.labels.size());
  auto model = std::make_unique<RmtEncoder>(bc, rmt);
  // Random classifier (HF's init: N(0, 0.02), bias 0), then the pretrained tensors over everything else.
  model->backbone().init_random(seed);
  load_base(*model, bert_dir);
  model->init_memory(seed + 1);
  return model;
}

std::unique_ptr<RmtEncoder> load_rmt(const std::string& dir) {
  Json j = read_config(dir);
  const std::string cpath = join_path(dir, "config.json");
  const Json* r = &rmt_key(j, cpath);
  RmtConfig rc = RmtConfig::from_json(*r, cpath);
  BertConfig bc = BertConfig::from_json(j, cpath);
  rc.validate(bc, cpath);
  auto model = std::make_unique<RmtEncoder>(bc, rc);
  SafetensorsFile file = weights_of(dir);
  const std::string wpath = file.path();
  load_memory(model->memory_params()[0], file);
  const std::string base_ref = r->string_or("delta_of", "");
  if (base_ref.empty()) {
    load_parameters(model->backbone().params(), file,
                    [](const std::string& n) { return std::vector<std::string>{strip_bert_prefix(n)}; });
    return model;
  }
  // Delta form: the base first, then the deltas and the new tensors.
  const std::string base_dir = resolve(dir, base_ref);
  check_delta_base(cpath, *r, join_path(base_dir, "model.safetensors"));
  const std::vector<std::string> absent = load_base(*model, base_dir);
  for (const std::string& name : add_deltas(model->backbone().params(), file)) {
    if (std::find(absent.begin(), absent.end(), name) == absent.end()) continue;
    if (!load_one(*model->backbone().params().find(name), file, name))
      throw Error(cat(wpath, ": missing tensor '", name, "'"));
  }
  return model;
}

void save_rmt(const std::string& dir, const RmtEncoder& model) {
  make_directories(dir);
  std::vector<SafetensorsItem> items = parameter_items(model.backbone().params());
  items.emplace_back(model.memory_params()[0].name, model.memory_params()[0].value);
  save_safetensors(join_path(dir, "model.safetensors"), items, {{"format", "pt"}});
  write_config(dir, model, Json::object());
}

void save_rmt_delta(const std::string& dir, const RmtEncoder& model, const std::string& base_dir,
                    const std::string& base_ref, int bits) {
  const std::string base_path = join_path(base_dir, "model.safetensors");
  SafetensorsFile base(base_path);
  std::vector<SafetensorsItem> items;
  for (auto& p : model.backbone().params().all()) {
    std::string found = base.contains(p.name) ? p.name : strip_bert_prefix(p.name);
    if (!base.contains(found)) {  // new in the fine-tuned model (the classifier): stored in full
      items.emplace_back(p.name, p.value);
      continue;
    }
    push_delta(items, p, base.tensor(found, p.value.shape()), bits);
  }
  items.emplace_back(model.memory_params()[0].name, model.memory_params()[0].value);
  make_directories(dir);
  save_safetensors(join_path(dir, "model.safetensors"), items, {{"format", "mnemo-rmt-delta"}});
  Json extra = Json::object();
  extra["delta_of"] = base_ref;
  extra["delta_of_bytes"] = file_size(base_path);
  write_config(dir, model, extra);
}

// ---- the decoder variant ----

namespace {

// The Llama a decoder starts from or was fine-tuned from, and the file holding its weights (sized at load).
std::unique_ptr<Llama> load_base_llama(const std::string& base) {
  return is_gguf_path(base) ? llama_from_gguf(base) : load_llama_dir(base);
}

std::string base_weights_file(const std::string& base) {
  return is_gguf_path(base) ? base : join_path(base, "model.safetensors");
}

void check_same_config(const RmtDecoder& model, const Llama& other, const std::string& source) {
  if (other.config().to_json().dump() != model.backbone().config().to_json().dump())
    throw Error(cat(source, ": its Llama config differs from the RMT decoder's"));
}

void copy_backbone(RmtDecoder& model, const Llama& from, const std::string& source) {
  check_same_config(model, from, source);
  for (auto& p : model.backbone().params().all()) {
    const Parameter* q = from.params().find(p.name);
    MNEMO_CHECK(q != nullptr, "RMT decoder base has no ", p.name);
    p.value.copy_from(q->value);
  }
}

void write_decoder_config(const std::string& dir, const RmtDecoder& model, const Json& extra_rmt) {
  Json j = model.backbone().config().to_json();
  Json r = model.config().to_json();
  for (auto& [k, v] : extra_rmt.as_object()) r[k] = v;
  j["rmt"] = r;
  atomic_write(join_path(dir, "config.json"), j.dump(2) + "\n");
}

bool has_tokenizer_files(const std::string& dir) {
  for (const char* f : {"tokenizer.json", "vocab.txt", "encoder.json"})
    if (file_exists(join_path(dir, f))) return true;
  return false;
}

}  // namespace

std::string rmt_variant(const std::string& dir) {
  const Json j = read_config(dir);
  const std::string cpath = join_path(dir, "config.json");
  const Json& r = rmt_key(j, cpath);
  if (!r.is_object()) throw Error(cat(cpath, ": \"rmt\" must be an object"));
  const std::string v = r.string_or("variant", "encoder");
  if (v != "encoder" && v != "decoder")
    throw Error(cat(cpath, ": rmt.variant \"", v, "\" is neither \"encoder\" nor \"decoder\""));
  return v;
}

std::unique_ptr<RmtDecoder> rmt_decoder_from_pretrained(const std::string& init, RmtDecoderConfig rmt,
                                                        bool sink_token, uint64_t seed) {
  if (!is_gguf_path(init) && file_exists(join_path(init, "config.json")) && read_config(init).contains("rmt")) {
    // A trained RMT decoder: its backbone and memory, the new segment settings.
    auto old = load_rmt_decoder(init);
    rmt.eos_id = old->config().eos_id;
    rmt.sink_id = sink_token ? int32_t(old->backbone().config().bos_token_id) : -1;
    auto model = std::make_unique<RmtDecoder>(old->backbone().config(), rmt);
    copy_backbone(*model, old->backbone(), init);
    if (old->memory_params()[0].value.shape() == model->memory_params()[0].value.shape())
      model->memory_params()[0].value.copy_from(old->memory_params()[0].value);
    else
      model->init_memory(seed + 1);
    return model;
  }
  std::unique_ptr<Llama> base = load_base_llama(init);
  rmt.eos_id = int32_t(base->config().eos_token_id);
  rmt.sink_id = sink_token ? int32_t(base->config().bos_token_id) : -1;
  auto model = std::make_unique<RmtDecoder>(base->config(), rmt);
  copy_backbone(*model, *base, init);
  model->init_memory(seed + 1);
  return model;
}

std::unique_ptr<RmtDecoder> load_rmt_decoder(const std::string& dir) {
  const Json j = read_config(dir);
  const std::string cpath = join_path(dir, "config.json");
  const Json& r = rmt_key(j, cpath);
  if (j.string_or("model_type", "") != "llama") throw Error(cat(cpath, ": the RMT decoder needs a Llama backbone"));
  const LlamaConfig lc = LlamaConfig::from_json(j, cpath);
  const RmtDecoderConfig rc = RmtDecoderConfig::from_json(r, cpath);
  rc.validate(lc, cpath);
  auto model = std::make_unique<RmtDecoder>(lc, rc);
  const SafetensorsFile file = weights_of(dir);
  load_memory(model->memory_params()[0], file);
  if (r.string_or("delta_of", "").empty()) {  // full form
    load_parameters(model->backbone().params(), file, [](const std::string&) { return std::vector<std::string>{}; });
    return model;
  }
  const std::string base = resolve(dir, r.string_or("delta_of", ""));
  check_delta_base(cpath, r, base_weights_file(base));
  copy_backbone(*model, *load_base_llama(base), base);
  add_deltas(model->backbone().params(), file);  // tensors without a delta keep the base's values
  return model;
}

void save_rmt_decoder(const std::string& dir, const RmtDecoder& model, const Json& extra_rmt) {
  make_directories(dir);
  std::vector<SafetensorsItem> items = parameter_items(model.backbone().params());
  items.emplace_back(model.memory_params()[0].name, model.memory_params()[0].value);
  save_safetensors(join_path(dir, "model.safetensors"), items, {{"format", "pt"}});
  write_decoder_config(dir, model, extra_rmt);
}

void save_rmt_decoder_delta(const std::string& dir, const RmtDecoder& model, const std::string& base,
                            const std::string& base_ref, int bits) {
  std::unique_ptr<Llama> b = load_base_llama(base);
  check_same_config(model, *b, base);
  std::vector<SafetensorsItem> items;
  for (auto& p : model.backbone().params().all()) {
    const Parameter* q = b->params().find(p.name);
    MNEMO_CHECK(q != nullptr, "RMT decoder base has no ", p.name);
    push_delta(items, p, q->value, bits);
  }
  items.emplace_back(model.memory_params()[0].name, model.memory_params()[0].value);
  make_directories(dir);
  save_safetensors(join_path(dir, "model.safetensors"), items, {{"format", "mnemo-rmt-delta"}});
  Json extra = Json::object();
  extra["delta_of"] = base_ref;
  extra["delta_of_bytes"] = file_size(base_weights_file(base));
  write_decoder_config(dir, model, extra);
}

std::string rmt_tokenizer_path(const std::string& dir) {
  if (has_tokenizer_files(dir)) return dir;
  Json j = read_config(dir);
  const Json* r = j.find("rmt");
  if (!r || !r->is_object()) return dir;
  for (const char* key : {"tokenizer", "delta_of"}) {
    const std::string ref = r->string_or(key, "");
    if (!ref.empty()) return resolve(dir, ref);
  }
  return dir;
}

}  // namespace mnemo

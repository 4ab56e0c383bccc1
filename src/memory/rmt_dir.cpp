#include "memory/rmt_dir.h"

#include <algorithm>
#include <cstring>
#include <sys/stat.h>

#include "base/error.h"
#include "base/file.h"
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
    if (!starts_with(p.name, "classifier.")) throw Error(cat(path, ": missing tensor '", p.name, "'"));
    absent.push_back(p.name);
  }
  return absent;
}

std::string resolve(const std::string& dir, const std::string& ref) {
  return !ref.empty() && ref[0] == '/' ? ref : join_path(dir, ref);
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
  BertConfig bc = BertConfig::from_json(j, cpath);
  bc.head = BertHead::SequenceClassification;
  bc.num_labels = int64_t(rmt.labels.size());
  auto model = std::make_unique<RmtEncoder>(bc, rmt);
  // Random classifier (HF's init: N(0, 0.02), bias 0), then the pretrained tensors over everything else.
  model->backbone().init_random(seed);
  load_base(*model, bert_dir);
  model->init_memory(seed + 1);
  // Starting from a trained RMT directory (a full one: it is also a BERT directory): keep its memory too.
  SafetensorsFile file(join_path(bert_dir, "model.safetensors"));
  Parameter& mem = model->memory_params()[0];
  if (file.contains(mem.name) && file.entry(mem.name).shape == mem.value.shape())
    mem.value.copy_from(file.tensor(mem.name, mem.value.shape()));
  return model;
}

std::unique_ptr<RmtEncoder> load_rmt(const std::string& dir) {
  Json j = read_config(dir);
  const std::string cpath = join_path(dir, "config.json");
  const Json* r = j.find("rmt");
  if (!r) throw Error(cat(cpath, ": no \"rmt\" key (not an RMT model directory)"));
  RmtConfig rc = RmtConfig::from_json(*r, cpath);
  BertConfig bc = BertConfig::from_json(j, cpath);
  rc.validate(bc, cpath);
  auto model = std::make_unique<RmtEncoder>(bc, rc);
  const std::string wpath = join_path(dir, "model.safetensors");
  if (!file_exists(wpath)) throw Error(cat(wpath, ": missing"));
  SafetensorsFile file(wpath);
  Parameter& mem = model->memory_params()[0];
  if (!file.contains(mem.name)) throw Error(cat(wpath, ": missing tensor '", mem.name, "'"));
  mem.value.copy_from(file.tensor(mem.name, mem.value.shape()));
  const std::string base_ref = r->string_or("delta_of", "");
  if (base_ref.empty()) {
    load_parameters(model->backbone().params(), file,
                    [](const std::string& n) { return std::vector<std::string>{strip_bert_prefix(n)}; });
    return model;
  }
  // Delta form: the base first, then the deltas and the new tensors.
  const std::string base_dir = resolve(dir, base_ref);
  const std::string base_path = join_path(base_dir, "model.safetensors");
  if (!file_exists(base_path))
    throw Error(cat(cpath, ": rmt.delta_of '", base_ref, "': ", base_path, " is missing (run scripts/setup)"));
  const int64_t want = r->int_or("delta_of_bytes", -1);
  if (want >= 0 && file_size(base_path) != want)
    throw Error(cat(base_path, ": ", file_size(base_path), " bytes, but ", cpath, " was made against a base of ",
                    want, " bytes"));
  const std::vector<std::string> absent = load_base(*model, base_dir);
  for (auto& p : model->backbone().params().all()) {
    const std::string d = "delta/" + p.name;
    if (file.contains(d)) {
      Tensor delta = file.tensor(d, p.value.shape());
      for (int64_t i = 0; i < delta.numel(); ++i) p.value[i] += delta[i];
    } else if (std::find(absent.begin(), absent.end(), p.name) != absent.end()) {
      if (!load_one(p, file, p.name)) throw Error(cat(wpath, ": missing tensor '", p.name, "'"));
    }
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
                    const std::string& base_ref) {
  const std::string base_path = join_path(base_dir, "model.safetensors");
  SafetensorsFile base(base_path);
  std::vector<SafetensorsItem> items;
  for (auto& p : model.backbone().params().all()) {
    std::string found = base.contains(p.name) ? p.name : strip_bert_prefix(p.name);
    if (!base.contains(found)) {  // new in the fine-tuned model (the classifier): stored in full
      items.emplace_back(p.name, p.value);
      continue;
    }
    Tensor b = base.tensor(found, p.value.shape());
    Tensor d = Tensor::zeros(p.value.shape());
    bool changed = false;
    for (int64_t i = 0; i < d.numel(); ++i) {
      d[i] = p.value[i] - b[i];
      changed |= d[i] != 0.0f;
    }
    if (changed) items.emplace_back("delta/" + p.name, d, DType::BF16);
  }
  items.emplace_back(model.memory_params()[0].name, model.memory_params()[0].value);
  make_directories(dir);
  save_safetensors(join_path(dir, "model.safetensors"), items, {{"format", "mnemo-rmt-delta"}});
  Json extra = Json::object();
  extra["delta_of"] = base_ref;
  extra["delta_of_bytes"] = file_size(base_path);
  write_config(dir, model, extra);
}

}  // namespace mnemo

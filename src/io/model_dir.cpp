#include "io/model_dir.h"

#include <cstring>

#include "base/error.h"
#include "base/file.h"

namespace mnemo {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string strip_or_add(const std::string& name, const std::string& prefix) {
  return starts_with(name, prefix) ? name.substr(prefix.size()) : prefix + name;
}

std::string weights_path(const std::string& dir) {
  std::string path = join_path(dir, "model.safetensors");
  if (!file_exists(path)) {
    if (file_exists(join_path(dir, "pytorch_model.bin")))
      throw Error(cat(path, ": missing (the directory has only pytorch_model.bin; save it with "
                            "save_pretrained(safe_serialization=True))"));
    throw Error(cat(path, ": missing"));
  }
  return path;
}

}  // namespace

Json read_config(const std::string& dir) {
  if (!is_directory(dir)) throw Error(cat(dir, ": not a directory"));
  const std::string path = join_path(dir, "config.json");
  if (!file_exists(path)) throw Error(cat(path, ": missing"));
  Json j = Json::parse(read_file(path), path);
  if (!j.is_object()) throw Error(cat(path, ": expected a JSON object"));
  return j;
}

void load_parameters(ParameterSet& params, const SafetensorsFile& file,
                     const std::function<std::vector<std::string>(const std::string&)>& alternatives) {
  for (auto& p : params.all()) {
    std::string found;
    if (file.contains(p.name)) {
      found = p.name;
    } else {
      for (auto& alt : alternatives(p.name))
        if (file.contains(alt)) {
          found = alt;
          break;
        }
    }
    if (found.empty()) throw Error(cat(file.path(), ": missing tensor '", p.name, "'"));
    const SafetensorsEntry& e = file.entry(found);
    if (e.dtype != DType::F32 && e.dtype != DType::F16 && e.dtype != DType::BF16)
      throw Error(cat(file.path(), ": tensor '", found, "' has dtype ", dtype_name(e.dtype),
                      ", expected F32, F16 or BF16"));
    const Shape want = p.disk_shape();
    if (e.shape != want)
      throw Error(cat(file.path(), ": tensor '", found, "' has shape ", shape_str(e.shape), ", expected ",
                      shape_str(want)));
    Tensor src = file.tensor(found);  // (disk shape), fp32
    if (!p.transposed_on_disk) {
      std::memcpy(p.value.data(), src.data(), size_t(src.numel()) * sizeof(float));
    } else {
      // Conv1D (in, out) on disk -> (out, in) here.
      const int64_t in = want[0], out = want[1];
      float* dst = p.value.data();
      for (int64_t i = 0; i < in; ++i)
        for (int64_t o = 0; o < out; ++o) dst[o * in + i] = src[i * out + o];
    }
  }
}

std::unique_ptr<Gpt2> load_gpt2(const std::string& dir) {
  Json j = read_config(dir);
  const std::string cpath = join_path(dir, "config.json");
  if (model_type_of(j, cpath) != "gpt2") throw Error(cat(cpath, ": not a GPT-2 model"));
  auto model = std::make_unique<Gpt2>(Gpt2Config::from_json(j, cpath));
  SafetensorsFile file(weights_path(dir));
  load_parameters(model->params(), file, [](const std::string& name) {
    return std::vector<std::string>{strip_or_add(name, "transformer.")};
  });
  return model;
}

std::unique_ptr<Bert> load_bert(const std::string& dir) {
  Json j = read_config(dir);
  const std::string cpath = join_path(dir, "config.json");
  if (model_type_of(j, cpath) != "bert") throw Error(cat(cpath, ": not a BERT model"));
  auto model = std::make_unique<Bert>(BertConfig::from_json(j, cpath));
  SafetensorsFile file(weights_path(dir));
  load_parameters(model->params(), file, [](const std::string& name) {
    std::vector<std::string> alts;
    // Older checkpoints keep the MLM output bias on the (tied) decoder only.
    if (name == "cls.predictions.bias") alts.push_back("cls.predictions.decoder.bias");
    if (!starts_with(name, "cls.") && !starts_with(name, "classifier.")) alts.push_back(strip_or_add(name, "bert."));
    return alts;
  });
  return model;
}

LoadedModel load_model_dir(const std::string& dir) {
  Json j = read_config(dir);
  LoadedModel m;
  m.type = model_type_of(j, join_path(dir, "config.json"));
  if (m.type == "gpt2") m.gpt2 = load_gpt2(dir);
  else m.bert = load_bert(dir);
  return m;
}

std::vector<SafetensorsItem> parameter_items(const ParameterSet& params) {
  std::vector<SafetensorsItem> items;
  for (auto& p : params.all()) {
    if (!p.transposed_on_disk) {
      items.emplace_back(p.name, p.value);
      continue;
    }
    const Shape disk = p.disk_shape();  // (in, out)
    const int64_t in = disk[0], out = disk[1];
    Tensor t = Tensor::zeros(disk);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) t[i * out + o] = p.value[o * in + i];
    items.emplace_back(p.name, t);
  }
  return items;
}

namespace {

void save_dir(const std::string& dir, const Json& config, const ParameterSet& params) {
  make_directories(dir);
  // Weights first: a directory whose config.json is new always has matching weights beside it.
  save_safetensors(join_path(dir, "model.safetensors"), parameter_items(params), {{"format", "pt"}});
  atomic_write(join_path(dir, "config.json"), config.dump(2) + "\n");
}

}  // namespace

void save_model_dir(const std::string& dir, const Gpt2& model) {
  save_dir(dir, model.config().to_json(), model.params());
}

void save_model_dir(const std::string& dir, const Bert& model) {
  save_dir(dir, model.config().to_json(), model.params());
}

}  // namespace mnemo

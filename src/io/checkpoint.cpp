#include "io/checkpoint.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include <fcntl.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "io/safetensors.h"

namespace mnemo {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "mnemo-checkpoint";
constexpr int kVersion = 1;
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimFile = "optimizer.safetensors";
constexpr const char* kMetaKey = "mnemo.trainer_state";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

Json state_json(const Checkpoint& ck) {
  Json j = Json::object();
  j["format"] = Json(kFormat);
  j["version"] = Json(kVersion);
  j["step"] = Json(ck.step);
  Json rng = Json::array();
  for (uint64_t w : ck.rng) rng.push_back(Json(hex64(w)));  // hex strings: JSON numbers cannot hold 64 bits
  j["rng"] = std::move(rng);
  j["state"] = ck.state;
  return j;
}

void parse_state(const Json& j, const std::string& where, Checkpoint& ck) {
  if (!j.is_object()) throw Error(cat(where, ": trainer state is not a JSON object"));
  const Json* f = j.find("format");
  if (!f || !f->is_string() || f->as_string() != kFormat)
    throw Error(cat(where, ": format is not \"", kFormat, "\" (not a mnemo checkpoint)"));
  const Json* v = j.find("version");
  if (!v || !v->is_number() || v->as_number() != kVersion)
    throw Error(cat(where, ": version ", v ? v->dump() : "missing", " is not supported (this build reads ", kVersion, ")"));
  const Json* s = j.find("step");
  if (!s || !s->is_number()) throw Error(cat(where, ": step is missing or not a number"));
  ck.step = s->as_int(cat(where, ": step"));
  if (ck.step < 0) throw Error(cat(where, ": step ", ck.step, " is negative"));
  const Json* r = j.find("rng");
  if (!r || !r->is_array() || r->size() != ck.rng.size())
    throw Error(cat(where, ": rng is not an array of ", ck.rng.size(), " hex words"));
  for (size_t i = 0; i < ck.rng.size(); ++i) {
    const Json& w = r->as_array()[i];
    const std::string* str = w.is_string() ? &w.as_string() : nullptr;
    bool ok = str && !str->empty() && str->size() <= 16 &&
              str->find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
    if (!ok) throw Error(cat(where, ": rng[", i, "] is not a hex word"));
    ck.rng[i] = std::stoull(*str, nullptr, 16);
  }
  const Json* st = j.find("state");
  if (!st || !st->is_object()) throw Error(cat(where, ": state is missing or not an object"));
  ck.state = *st;
}

void check_names(const std::string& path, const char* group, const std::vector<std::pair<std::string, Tensor>>& ts) {
  std::set<std::string> seen;
  for (const auto& [name, t] : ts) {
    if (name.empty()) throw Error(cat(path, ": ", group, " tensor with an empty name"));
    if (!t.defined()) throw Error(cat(path, ": ", group, " tensor '", name, "' is undefined"));
    if (!seen.insert(name).second) throw Error(cat(path, ": ", group, " tensor '", name, "' given twice"));
  }
}

// Reads every tensor of FILE whose name starts with PREFIX (prefix stripped), checking finiteness.
std::vector<std::pair<std::string, Tensor>> read_tensors(const SafetensorsFile& f, const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& name : f.names()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    if (f.entry(name).dtype != DType::F32)
      throw Error(cat(f.path(), ": tensor '", name, "' is ", dtype_name(f.entry(name).dtype), ", a checkpoint holds F32"));
    Tensor t = f.tensor_copy(name);
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(t[i])) throw Error(cat(f.path(), ": tensor '", name, "' holds a non-finite value at index ", i));
    out.emplace_back(name.substr(prefix.size()), std::move(t));
  }
  return out;
}

std::vector<SafetensorsItem> items_of(const std::vector<std::pair<std::string, Tensor>>& ts, const std::string& prefix) {
  std::vector<SafetensorsItem> items;
  for (const auto& [name, t] : ts) items.emplace_back(prefix + name, t);
  return items;
}

void fsync_path(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

const Tensor& find_tensor(const std::string& source, const char* group,
                          const std::vector<std::pair<std::string, Tensor>>& ts, const std::string& name,
                          const Shape& shape) {
  for (const auto& [n, t] : ts)
    if (n == name) {
      if (t.shape() != shape)
        throw Error(cat(source, ": ", group, " tensor '", name, "' has shape ", shape_str(t.shape()), ", expected ", shape_str(shape)));
      return t;
    }
  throw Error(cat(source, ": no ", group, " tensor '", name, "'"));
}

}  // namespace

const Tensor& Checkpoint::weight(const std::string& name, const Shape& shape) const {
  return find_tensor(source, "weight", weights, name, shape);
}

const Tensor& Checkpoint::optimizer_tensor(const std::string& name, const Shape& shape) const {
  return find_tensor(source, "optimizer", optimizer, name, shape);
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  check_names(path, "weight", ck.weights);
  check_names(path, "optimizer", ck.optimizer);
  if (ck.step < 0) throw Error(cat(path, ": step ", ck.step, " is negative"));
  if (!ck.state.is_object()) throw Error(cat(path, ": trainer state must be a JSON object"));

  if (ends_with(path, ".safetensors")) {
    std::vector<SafetensorsItem> items = items_of(ck.weights, "model/");
    for (auto& it : items_of(ck.optimizer, "optimizer/")) items.push_back(std::move(it));
    save_safetensors(path, items, {{kMetaKey, state_json(ck).dump()}});
    return;
  }

  for (const auto& [name, text] : ck.extra_files)
    if (name.empty() || name.find('/') != std::string::npos || name == kStateFile || name == kModelFile ||
        name == kOptimFile || name[0] == '.')
      throw Error(cat(path, ": cannot write extra file '", name, "' into a checkpoint"));

  // Build the whole directory beside the target, then swap it in with one rename.
  std::string clean = fs::path(path).lexically_normal().string();
  if (!clean.empty() && clean.back() == '/') clean.pop_back();
  std::random_device rd;
  std::string tmp = cat(clean, ".tmp.", std::hex, rd());
  try {
    make_directories(tmp);
    save_safetensors(join_path(tmp, kModelFile), items_of(ck.weights, ""));
    save_safetensors(join_path(tmp, kOptimFile), items_of(ck.optimizer, ""));
    for (const auto& [name, text] : ck.extra_files) atomic_write(join_path(tmp, name), text);
    atomic_write(join_path(tmp, kStateFile), state_json(ck).dump(2) + "\n");
    fsync_path(tmp);
    std::string parent = fs::path(clean).parent_path().string();
    if (parent.empty()) parent = ".";
    if (is_directory(clean)) {
      std::error_code ec;
      if (!file_exists(join_path(clean, kStateFile)) && !fs::is_empty(clean, ec))
        throw Error(cat(path, ": exists and is not a mnemo checkpoint directory; refusing to replace it"));
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, clean.c_str(), RENAME_EXCHANGE) != 0)
        throw Error(cat(path, ": cannot swap the new checkpoint into place: ", std::strerror(errno)));
      fs::remove_all(tmp, ec);  // tmp now holds the previous checkpoint
    } else {
      if (file_exists(clean)) throw Error(cat(path, ": exists and is not a directory"));
      if (std::rename(tmp.c_str(), clean.c_str()) != 0)
        throw Error(cat(path, ": cannot rename the new checkpoint into place: ", std::strerror(errno)));
    }
    fsync_path(parent);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint ck;
  ck.source = path;
  if (ends_with(path, ".safetensors") && !is_directory(path)) {
    SafetensorsFile f(path);
    auto it = f.metadata().find(kMetaKey);
    if (it == f.metadata().end()) throw Error(cat(path, ": no '", kMetaKey, "' metadata (not a mnemo checkpoint)"));
    parse_state(Json::parse(it->second, cat(path, ": ", kMetaKey)), cat(path, ": ", kMetaKey), ck);
    for (const auto& name : f.names())
      if (name.compare(0, 6, "model/") != 0 && name.compare(0, 10, "optimizer/") != 0)
        throw Error(cat(path, ": tensor '", name, "' is neither model/ nor optimizer/"));
    ck.weights = read_tensors(f, "model/");
    ck.optimizer = read_tensors(f, "optimizer/");
    return ck;
  }
  if (!is_directory(path)) throw Error(cat(path, ": no such checkpoint (expected a directory or a .safetensors file)"));
  std::string state_path = join_path(path, kStateFile);
  if (!file_exists(state_path)) throw Error(cat(path, ": no ", kStateFile, " (not a mnemo checkpoint)"));
  parse_state(Json::parse(read_file(state_path), state_path), state_path, ck);
  ck.weights = read_tensors(SafetensorsFile(join_path(path, kModelFile)), "");
  ck.optimizer = read_tensors(SafetensorsFile(join_path(path, kOptimFile)), "");
  for (const auto& e : fs::directory_iterator(path)) {
    std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == kStateFile || name == kModelFile || name == kOptimFile) continue;
    ck.extra_files[name] = read_file(e.path().string());
  }
  return ck;
}

bool is_checkpoint(const std::string& path) {
  if (is_directory(path)) return file_exists(join_path(path, kStateFile));
  if (!ends_with(path, ".safetensors") || !file_exists(path)) return false;
  try {
    SafetensorsFile f(path);
    return f.metadata().count(kMetaKey) != 0;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace mnemo

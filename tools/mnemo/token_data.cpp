#include "token_data.h"

#include <sstream>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"

namespace mnemo::cli {

namespace {
bool ends_with(const std::string& s, const char* suffix) {
  std::string t(suffix);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
}  // namespace

std::vector<int32_t> read_ids_json(const std::string& path) {
  Json j = Json::parse(read_file(path), path);
  std::vector<int32_t> ids;
  const auto& a = j.as_array(path);
  ids.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    int64_t v = a[i].as_int(cat(path, ": element ", i));
    if (v < 0 || v > INT32_MAX) throw Error(cat(path, ": element ", i, " is ", v, ", not a token id"));
    ids.push_back(int32_t(v));
  }
  if (ids.empty()) throw Error(cat(path, ": no token ids"));
  return ids;
}

std::vector<int32_t> read_token_data(const std::string& path, const Tokenizer* tok) {
  if (ends_with(path, ".json")) return read_ids_json(path);
  if (!tok) throw Error(cat(path, ": text data needs a tokenizer (--tokenizer PATH, or a model directory that has one)"));
  std::vector<int32_t> ids;
  if (ends_with(path, ".jsonl")) {
    int32_t eot = tok->special_id("<|endoftext|>");
    std::istringstream in(read_file(path));
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.empty()) continue;
      Json d = Json::parse(line, cat(path, ":", n));
      const Json* text = d.find("text");
      if (!text) throw Error(cat(path, ":", n, ": no \"text\" field"));
      auto part = tok->encode(text->as_string(cat(path, ":", n, ": text")));
      ids.insert(ids.end(), part.begin(), part.end());
      if (eot >= 0) ids.push_back(eot);
    }
  } else {
    ids = tok->encode(read_file(path));
  }
  if (ids.empty()) throw Error(cat(path, ": no text"));
  return ids;
}

}  // namespace mnemo::cli

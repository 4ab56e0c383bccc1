#include "lm_common.h"

#include <cmath>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "io/gguf_tokenizer.h"

namespace mnemo::lm {

std::unique_ptr<Tokenizer> tokenizer_for(const std::string& model) { return load_any_tokenizer(model); }

std::vector<int32_t> read_input_ids(cli::Args& args, const std::string& model, bool prompt_flag,
                                    std::unique_ptr<Tokenizer>* tokenizer) {
  auto ids_file = args.get("--ids");
  auto text_file = args.get("--text");
  std::optional<std::string> prompt;
  if (prompt_flag) prompt = args.get("--prompt");
  const int given = int(ids_file.has_value()) + int(text_file.has_value()) + int(prompt.has_value());
  if (given != 1)
    throw Error(cat(prompt_flag ? "give exactly one of --ids FILE, --text FILE, --prompt TEXT"
                                : "give exactly one of --ids FILE, --text FILE"));
  std::vector<int32_t> ids;
  if (ids_file) {
    Json j = Json::parse(read_file(*ids_file), *ids_file);
    if (!j.is_array()) throw Error(cat(*ids_file, ": expected a JSON array of token ids"));
    for (const Json& v : j.as_array()) {
      if (!v.is_number()) throw Error(cat(*ids_file, ": expected a JSON array of token ids"));
      int64_t x = v.as_int(cat(*ids_file, ": token id"));
      if (x < 0 || x > INT32_MAX) throw Error(cat(*ids_file, ": token id ", x, " out of range"));
      ids.push_back(int32_t(x));
    }
    return ids;
  }
  *tokenizer = tokenizer_for(model);
  return (*tokenizer)->encode(text_file ? read_file(*text_file) : *prompt);
}

double nll(const float* logits, int64_t V, int32_t target) {
  double mx = -INFINITY;
  for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(logits[v]));
  double sum = 0.0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(double(logits[v]) - mx);
  return mx + std::log(sum) - double(logits[target]);
}

}  // namespace mnemo::lm

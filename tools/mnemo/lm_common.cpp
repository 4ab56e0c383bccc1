#include "lm_common.h"

#include <cmath>

#include "base/error.h"
#include "base/file.h"
#include "io/gguf_tokenizer.h"
#include "token_data.h"

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
  if (ids_file) return cli::read_ids_json(*ids_file);
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

#include "eval/flops.h"

#include <algorithm>
#include <cctype>

#include "base/error.h"

namespace mnemo {

const std::vector<TransformerShape>& opt_family() {
  // name, layers, d_model, heads, d_ff, vocabulary (50,272 for every OPT model)
  static const std::vector<TransformerShape> family = {
      {"opt-125m", 12, 768, 12, 3072, 50272},      {"opt-350m", 24, 1024, 16, 4096, 50272},
      {"opt-1.3b", 24, 2048, 32, 8192, 50272},     {"opt-2.7b", 32, 2560, 32, 10240, 50272},
      {"opt-6.7b", 32, 4096, 32, 16384, 50272},    {"opt-13b", 40, 5120, 40, 20480, 50272},
      {"opt-30b", 48, 7168, 56, 28672, 50272},     {"opt-66b", 64, 9216, 72, 36864, 50272},
      {"opt-175b", 96, 12288, 96, 49152, 50272},
  };
  return family;
}

const TransformerShape& opt_model(const std::string& name) {
  std::string want = name;
  std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (want.rfind("opt-", 0) != 0) want = "opt-" + want;
  std::string known;
  for (auto& m : opt_family()) {
    if (m.name == want) return m;
    known += (known.empty() ? "" : ", ") + m.name;
  }
  throw Error(cat("unknown model '", name, "' (known: ", known, ")"));
}

FlopsBreakdown forward_flops(const TransformerShape& m, int64_t T) {
  const double t = double(T), d = double(m.d_model), L = double(m.n_layer);
  FlopsBreakdown f;
  f.projections = L * t * 2 * (4 * d * d);
  f.ffn = L * t * 2 * (2 * d * double(m.d_ff));
  f.attention = L * 4 * t * t * d;
  f.softmax = L * 5 * double(m.n_head) * t * t;
  f.head = t * 2 * d * double(m.vocab);
  return f;
}

FlopsBreakdown rmt_flops(const TransformerShape& m, int64_t tokens, int64_t segment, int64_t memory) {
  if (segment <= 0 || memory < 0 || memory >= segment)
    throw Error(cat("segment ", segment, " with ", memory, " memory tokens leaves no room for text"));
  int64_t text = segment - memory, segments = (tokens + text - 1) / text;
  FlopsBreakdown one = forward_flops(m, segment), f;
  double s = double(segments);
  f.projections = s * one.projections;
  f.ffn = s * one.ffn;
  f.attention = s * one.attention;
  f.softmax = s * one.softmax;
  f.head = s * one.head;
  return f;
}

}  // namespace mnemo

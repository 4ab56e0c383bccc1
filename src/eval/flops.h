#pragma once
// Forward-pass FLOPs of a decoder-only transformer, with full attention over a whole input or as an RMT that runs
// the same model segment by segment. The formula and the terms it counts are documented in docs/flops.md:
// per layer and token, 2·(4·d²) for the Q, K, V and output projections, 2·(2·d·d_ff) for the feed-forward,
// 4·T·d for the attention scores (QKᵀ) and the weighted sum (PV) over a context of T tokens, and 5·h·T for the
// softmax (scale, max, exp, sum, divide per score and head); plus 2·d·V per token for the output head. A
// multiply-add counts as 2 FLOPs. Embedding look-ups, biases, LayerNorms and residual adds are left out (≪ 1 %).
#include <cstdint>
#include <string>
#include <vector>

namespace mnemo {

struct TransformerShape {
  std::string name;
  int64_t n_layer, d_model, n_head, d_ff, vocab;
};

// The OPT family (Zhang et al. 2022, Table 1): 125M … 175B.
const std::vector<TransformerShape>& opt_family();
// By name, case-insensitive ("opt-125m" or "125m"); throws Error listing the known names.
const TransformerShape& opt_model(const std::string& name);

struct FlopsBreakdown {
  double projections = 0, ffn = 0, attention = 0, softmax = 0, head = 0;
  double total() const { return projections + ffn + attention + softmax + head; }
};

// One forward pass over T tokens with full (bidirectional-cost) attention.
FlopsBreakdown forward_flops(const TransformerShape& m, int64_t T);

// RMT over `tokens` input tokens: ceil(tokens / (segment - memory)) passes of `segment` tokens each, where
// `memory` of the segment's positions hold memory tokens (0: the segment is all text, as in the published
// comparison). Throws Error when memory >= segment.
FlopsBreakdown rmt_flops(const TransformerShape& m, int64_t tokens, int64_t segment, int64_t memory);

}  // namespace mnemo

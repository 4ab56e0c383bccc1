#pragma once
// What the command line asks of a decoder's memory: --memory POLICY --budget K. "full" (the default) is the
// unbounded cache: nothing is evicted and it takes no budget. Any other policy needs a budget: K entries per layer
// for every layer, or one value per layer separated by commas ("64,64,128,…"). A budget at or above the sequence
// length never evicts, so the run equals the full cache exactly (tested); a budget of 0, or one below what the
// policy needs (sinks + 1), is an error naming the flag.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "memory/eviction_policy.h"

namespace mnemo {

struct MemorySpec {
  std::string policy = "full";   // "full" or a make_policy() name
  std::vector<int64_t> budgets;  // (n_layer) entries kept per layer between steps; empty for full
  bool full() const { return policy == "full"; }
};

// Validates the flags against a model with n_layer layers. budget is the --budget text ("" if absent).
MemorySpec parse_memory(const std::string& policy, const std::string& budget, int n_layer);

}  // namespace mnemo

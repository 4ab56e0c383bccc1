#include "memory/memory_spec.h"

#include <cstdlib>

#include "base/error.h"

namespace mnemo {

MemorySpec parse_memory(const std::string& policy, const std::string& budget, int n_layer) {
  MemorySpec spec;
  spec.policy = policy.empty() ? "full" : policy;
  if (spec.full()) {
    if (!budget.empty()) throw Error(cat("--budget ", budget, ": --memory full keeps every entry and takes no budget"));
    return spec;
  }
  const std::unique_ptr<EvictionPolicy> p = make_policy(spec.policy);  // throws for an unknown name
  if (budget.empty()) throw Error(cat("--memory ", spec.policy, " needs --budget K (entries kept per layer)"));
  size_t at = 0;
  while (at <= budget.size()) {
    size_t comma = budget.find(',', at);
    if (comma == std::string::npos) comma = budget.size();
    const std::string item = budget.substr(at, comma - at);
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0') throw Error(cat("--budget ", budget, ": '", item, "' is not a whole number"));
    if (v <= 0)
      throw Error(cat("--budget ", budget, ": a bounded cache keeps at least 1 entry per layer (use --memory full",
                      " for no limit)"));
    if (v < p->min_budget())
      throw Error(cat("--budget ", budget, ": ", p->name(), " needs at least ", p->min_budget(), " entries per layer"));
    spec.budgets.push_back(v);
    at = comma + 1;
  }
  if (spec.budgets.size() == 1) spec.budgets.assign(size_t(n_layer), spec.budgets[0]);
  if (int(spec.budgets.size()) != n_layer)
    throw Error(cat("--budget ", budget, ": ", spec.budgets.size(), " values, but the model has ", n_layer,
                    " layers (give one value, or one per layer)"));
  return spec;
}

}  // namespace mnemo

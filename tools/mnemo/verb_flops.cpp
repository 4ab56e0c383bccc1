// mnemo flops: forward FLOPs of full attention vs RMT for the OPT family over input lengths (docs/flops.md).
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "base/json.h"
#include "cli.h"
#include "eval/flops.h"

namespace {

constexpr const char* kUsage =
    R"(usage: mnemo flops [--model NAME|all] [--segment N] [--memory M] [--lengths N,N...] [--json]
  --model NAME|all      an OPT model (125m, 350m, 1.3b, ... 175b) or all of them (default all)
  --segment N           RMT segment length in tokens (default 512)
  --memory M            of which memory tokens (default 0)
  --lengths N,N...      input lengths (default 512,2048,8192,32768,131072,524288,2048000)
  --json                one JSON object
)";

std::vector<int64_t> parse_lengths(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v <= 0)
      throw mnemo::Error(mnemo::cat("--lengths: '", item, "' is not a positive integer"));
    out.push_back(v);
  }
  if (out.empty()) throw mnemo::Error("--lengths: empty list");
  return out;
}

int run(mnemo::cli::Args& args) {
  using namespace mnemo;
  cli::common_flags(args);
  std::string model = args.get_or("--model", "all");
  int64_t segment = args.get_int("--segment", 512);
  int64_t memory = args.get_int("--memory", 0);
  auto lengths = parse_lengths(args.get_or("--lengths", "512,2048,8192,32768,131072,524288,2048000"));
  bool json = args.flag("--json");
  args.finish();

  std::vector<TransformerShape> models;
  if (model == "all") models = opt_family();
  else models.push_back(opt_model(model));

  Json rows = Json::array();
  if (!json) std::printf("%-10s %12s %14s %14s %10s\n", "model", "tokens", "full FLOPs", "RMT FLOPs", "full/RMT");
  for (auto& m : models)
    for (int64_t L : lengths) {
      double full = forward_flops(m, L).total(), rmt = rmt_flops(m, L, segment, memory).total();
      Json r = Json::object();
      r["model"] = m.name;
      r["tokens"] = L;
      r["full_flops"] = full;
      r["rmt_flops"] = rmt;
      r["ratio"] = full / rmt;
      rows.push_back(r);
      if (!json) std::printf("%-10s %12lld %14.4g %14.4g %10.1f\n", m.name.c_str(), (long long)L, full, rmt, full / rmt);
    }
  if (json) {
    Json out = Json::object();
    out["segment"] = segment;
    out["memory"] = memory;
    out["rows"] = rows;
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

}  // namespace

MNEMO_VERB("flops", "forward FLOPs of full attention vs RMT (segmented) for the OPT family", run, kUsage);

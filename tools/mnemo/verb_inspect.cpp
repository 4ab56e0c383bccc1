// mnemo inspect FILE: the metadata and tensor table of a GGUF or safetensors file (docs/formats.md).
#include <cstdio>
#include <fstream>
#include <map>

#include "base/error.h"
#include "base/json.h"
#include "cli.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace {

using namespace mnemo;

constexpr const char* kUsage =
    R"(usage: mnemo inspect FILE [--all] [--json]
  FILE                  a .gguf or .safetensors file
  --all                 whole metadata arrays (default: the first 8 items)
  --json                one JSON object
)";

bool has_suffix(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string shape_json(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += cat(i ? ", " : "", s[i]);
  return out + "]";
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

int inspect_gguf(const std::string& path, bool json, size_t max_items) {
  GgufFile f(path);
  std::map<std::string, std::pair<int64_t, size_t>> by_type;  // type -> (tensors, bytes)
  size_t total = 0;
  for (const auto& n : f.tensor_names()) {
    const GgufTensor& t = f.tensor(n);
    auto& e = by_type[qtype_name(uint32_t(t.type))];
    e.first += 1;
    e.second += t.nbytes;
    total += t.nbytes;
  }
  if (json) {
    std::string out = cat("{\"file\": ", json_quote(path), ", \"format\": \"gguf\", \"version\": ", f.version(),
                          ", \"alignment\": ", f.alignment(), ", \"tensor_bytes\": ", total, ", \"metadata\": {");
    for (size_t i = 0; i < f.keys().size(); ++i) {
      const GgufValue& v = f.value(f.keys()[i]);
      out += cat(i ? ", " : "", json_quote(f.keys()[i]), ": {\"type\": ", json_quote(v.type_str()),
                 ", \"value\": ", gguf_value_json(v, max_items), "}");
    }
    out += "}, \"tensors\": [";
    for (size_t i = 0; i < f.tensor_names().size(); ++i) {
      const GgufTensor& t = f.tensor(f.tensor_names()[i]);
      out += cat(i ? ", " : "", "{\"name\": ", json_quote(t.name), ", \"type\": \"", qtype_name(uint32_t(t.type)),
                 "\", \"shape\": ", shape_json(t.shape), ", \"bytes\": ", t.nbytes, ", \"offset\": ", t.offset, "}");
    }
    std::printf("%s]}\n", out.c_str());
    return 0;
  }
  std::printf("%s: GGUF v%u, alignment %zu, %zu metadata keys, %zu tensors, %s of tensor data\n", path.c_str(),
              f.version(), f.alignment(), f.keys().size(), f.tensor_names().size(), human_bytes(double(total)).c_str());
  for (const auto& [type, e] : by_type)
    std::printf("  %-6s %5lld tensors %12s\n", type.c_str(), (long long)e.first, human_bytes(double(e.second)).c_str());
  std::printf("\nmetadata:\n");
  for (const auto& k : f.keys()) {
    const GgufValue& v = f.value(k);
    std::string text = gguf_value_json(v, max_items);
    if (max_items && text.size() > 160) text = text.substr(0, 157) + "...";
    std::printf("  %-44s %-18s %s\n", k.c_str(), v.type_str().c_str(), text.c_str());
  }
  std::printf("\ntensors:\n");
  for (const auto& n : f.tensor_names()) {
    const GgufTensor& t = f.tensor(n);
    std::printf("  %-36s %-5s %-18s %12s\n", n.c_str(), qtype_name(uint32_t(t.type)), shape_str(t.shape).c_str(),
                human_bytes(double(t.nbytes)).c_str());
  }
  return 0;
}

int inspect_safetensors(const std::string& path, bool json) {
  SafetensorsFile f(path);
  size_t total = 0;
  for (const auto& n : f.names()) total += f.entry(n).nbytes;
  if (json) {
    std::string out = cat("{\"file\": ", json_quote(path), ", \"format\": \"safetensors\", \"tensor_bytes\": ", total,
                          ", \"metadata\": {");
    size_t i = 0;
    for (const auto& [k, v] : f.metadata()) out += cat(i++ ? ", " : "", json_quote(k), ": ", json_quote(v));
    out += "}, \"tensors\": [";
    for (size_t j = 0; j < f.names().size(); ++j) {
      const SafetensorsEntry& e = f.entry(f.names()[j]);
      out += cat(j ? ", " : "", "{\"name\": ", json_quote(e.name), ", \"dtype\": \"", dtype_name(e.dtype),
                 "\", \"shape\": ", shape_json(e.shape), ", \"bytes\": ", e.nbytes, ", \"offset\": ", e.offset, "}");
    }
    std::printf("%s]}\n", out.c_str());
    return 0;
  }
  std::printf("%s: safetensors, %zu tensors, %s of tensor data\n", path.c_str(), f.names().size(),
              human_bytes(double(total)).c_str());
  if (!f.metadata().empty()) {
    std::printf("\nmetadata:\n");
    for (const auto& [k, v] : f.metadata()) std::printf("  %-30s %s\n", k.c_str(), v.c_str());
  }
  std::printf("\ntensors:\n");
  for (const auto& n : f.names()) {
    const SafetensorsEntry& e = f.entry(n);
    std::printf("  %-52s %-5s %-18s %12s\n", n.c_str(), dtype_name(e.dtype), shape_str(e.shape).c_str(),
                human_bytes(double(e.nbytes)).c_str());
  }
  return 0;
}

int run(cli::Args& args) {
  cli::common_flags(args);
  const bool json = args.flag("--json");
  const bool all = args.flag("--all");  // print whole metadata arrays (default: the first 8 items)
  auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1) throw Error("inspect: expected one FILE (a .gguf or .safetensors file)");
  const std::string& path = pos[0];
  const size_t max_items = all ? 0 : 8;
  if (has_suffix(path, ".gguf") || has_suffix(path, ".GGUF")) return inspect_gguf(path, json, max_items);
  if (has_suffix(path, ".safetensors")) return inspect_safetensors(path, json);
  // Otherwise sniff the magic.
  char head[4] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(cat(path, ": cannot open"));
  in.read(head, 4);
  if (std::string(head, 4) == "GGUF") return inspect_gguf(path, json, max_items);
  return inspect_safetensors(path, json);
}

}  // namespace

MNEMO_VERB("inspect", "print a GGUF or safetensors file's metadata and tensor table (--json, --all)", run, kUsage);

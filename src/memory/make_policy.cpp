// make_policy: the --memory names (memory/eviction_policy.h) to policy objects.
#include <cstdlib>

#include "base/error.h"
#include "memory/eviction_policy.h"
#include "memory/h2o_policy.h"
#include "memory/sink_policy.h"
#include "memory/tova_policy.h"
#include "memory/window_policy.h"

namespace mnemo {
namespace {

const char* kKnown = "window, sink, sink:S, h2o, h2o:R, tova, sink[:S]+window|h2o|tova, full";

[[noreturn]] void unknown(const std::string& name, const std::string& why) {
  throw Error(cat("--memory '", name, "': ", why, " (known: ", kKnown, ")"));
}

// "word" or "word:ARG" -> word, arg ("" if none).
void split_arg(const std::string& s, std::string& word, std::string& arg) {
  const size_t c = s.find(':');
  word = s.substr(0, c);
  arg = c == std::string::npos ? "" : s.substr(c + 1);
}

std::unique_ptr<EvictionPolicy> make_base(const std::string& full, const std::string& s) {
  std::string word, arg;
  split_arg(s, word, arg);
  if (word == "window" && arg.empty()) return std::make_unique<WindowPolicy>();
  if (word == "tova" && arg.empty()) return std::make_unique<TovaPolicy>();
  if (word == "h2o") {
    if (arg.empty()) return std::make_unique<H2OPolicy>();
    char* end = nullptr;
    const double r = std::strtod(arg.c_str(), &end);
    if (end == arg.c_str() || *end != '\0' || !(r > 0.0 && r <= 1.0))
      unknown(full, cat("h2o:R needs a recent share R in (0, 1], got '", arg, "'"));
    return std::make_unique<H2OPolicy>(r);
  }
  if (word == "full") unknown(full, "full keeps everything and cannot be combined");
  unknown(full, cat("unknown policy '", s, "'"));
}

}  // namespace

std::unique_ptr<EvictionPolicy> make_policy(const std::string& name) {
  const size_t plus = name.find('+');
  const std::string head = name.substr(0, plus);
  std::string word, arg;
  split_arg(head, word, arg);
  if (word != "sink") {
    if (plus != std::string::npos) unknown(name, "only sink[:S] combines with another policy, as sink+P");
    return make_base(name, name);
  }
  int64_t n_sink = 4;  // StreamingLLM's default
  if (!arg.empty()) {
    char* end = nullptr;
    const long long v = std::strtoll(arg.c_str(), &end, 10);
    if (end == arg.c_str() || *end != '\0' || v < 1 || v > 1000000)
      unknown(name, cat("sink:S needs a whole number of sinks S >= 1, got '", arg, "'"));
    n_sink = v;
  }
  const std::string rest = plus == std::string::npos ? "window" : name.substr(plus + 1);
  if (rest.find('+') != std::string::npos || rest.rfind("sink", 0) == 0) unknown(name, "one sink+P at most");
  return std::make_unique<SinkPolicy>(n_sink, make_base(name, rest));
}

}  // namespace mnemo

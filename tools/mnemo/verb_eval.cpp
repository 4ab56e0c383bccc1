// mnemo eval <subcommand> [options]: a dispatcher over subcommands (see eval_verbs.h for the convention: one
// function per subcommand, each in its own file eval_<name>.cpp).
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "cli.h"
#include "eval_verbs.h"

namespace {

using namespace mnemo;

struct Subcommand {
  std::string name;
  int (*run)(cli::Args&);
  const char* usage;
};

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> table = {
      {"rmt", cli::run_eval_rmt, cli::kEvalRmtUsage},
      {"qa", cli::run_eval_qa, cli::kEvalQaUsage},
      {"stream", cli::run_eval_stream, cli::kEvalStreamUsage},
  };
  return table;
}

std::vector<cli::Form> forms() {
  std::vector<cli::Form> out;
  for (auto& s : subcommands()) out.push_back({s.name, s.usage});
  return out;
}

int run(cli::Args& args) {
  std::string known;
  for (auto& s : subcommands()) {
    if (args.leading(s.name)) return s.run(args);  // the sub-command word (flags are read by the subcommand)
    known += (known.empty() ? "" : ", ") + s.name;
  }
  throw Error(cat("name a subcommand: ", known, " (mnemo eval --help)"));
}

}  // namespace

MNEMO_VERB("eval", "evaluate: `eval rmt` (RMT accuracy), `eval qa` (answers at a KV-cache budget), `eval stream` "
           "(long-stream perplexity)", run, forms());

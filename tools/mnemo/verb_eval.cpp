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

const std::vector<std::pair<std::string, int (*)(cli::Args&)>>& subcommands() {
  static const std::vector<std::pair<std::string, int (*)(cli::Args&)>> table = {
      {"rmt", cli::run_eval_rmt},
      {"qa", cli::run_eval_qa},
      {"stream", cli::run_eval_stream},
  };
  return table;
}

int run(cli::Args& args) {
  std::string known;
  for (auto& [name, fn] : subcommands()) {
    if (args.flag(name)) return fn(args);  // the sub-command word (flags are read by the subcommand)
    known += (known.empty() ? "" : ", ") + name;
  }
  throw Error(cat("eval: name a subcommand (", known, "), e.g. `mnemo eval rmt --model DIR --data FILE.jsonl`"));
}

}  // namespace

MNEMO_VERB("eval", "evaluate a model on a task: `eval rmt` (recurrent memory accuracy, time, peak memory)", run);

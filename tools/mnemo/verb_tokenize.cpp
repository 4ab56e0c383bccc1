// mnemo tokenize: text -> ids (or ids -> text with --decode) with a model directory's or a file's tokenizer, and
// `mnemo tokenize train` to learn a byte-level BPE vocabulary on text files (docs/text.md).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/timer.h"
#include "cli.h"
#include "io/gguf_tokenizer.h"
#include "text/bpe_trainer.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace {

using namespace mnemo;

constexpr const char* kUsage =
    R"(usage: mnemo tokenize --tokenizer PATH (--text FILE | --decode FILE.json) [--json]
  --tokenizer PATH      model directory, tokenizer.json, vocab.txt, encoder.json or GGUF file (required)
  --text FILE           UTF-8 text to ids, space-separated (--json: {"ids": [...]})
  --decode FILE.json    ids ([...] or {"ids": [...]}) to text (--json: {"text": ...})
  --json                JSON output
)";

constexpr const char* kTrainUsage =
    R"(usage: mnemo tokenize train --corpus FILES|DIR --out FILE [options]
  --corpus FILES|DIR    comma-separated text files and directories of .txt files (required)
  --out FILE            the tokenizer.json to write (required)
  --vocab-size N        specials + 256 bytes + merges (default 8192)
  --min-frequency N     least count of a pair to merge (default 2)
  --pattern gpt2|llama3 pre-tokenizer split (default gpt2)
  --individual-digits   split numbers into single digits
  --special T[,T...]    special tokens (default <|endoftext|>)
  --json                a JSON summary on stdout (default: on stderr)
)";

std::vector<std::string> list_corpus(const std::string& spec) {
  std::vector<std::string> files;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    if (is_directory(item)) {
      std::vector<std::string> found;
      for (const auto& e : std::filesystem::directory_iterator(item))
        if (e.is_regular_file() && e.path().extension() == ".txt") found.push_back(e.path().string());
      std::sort(found.begin(), found.end());  // a fixed order: training is deterministic
      if (found.empty()) throw Error(cat(item, ": no .txt files in this directory"));
      files.insert(files.end(), found.begin(), found.end());
    } else {
      if (!file_exists(item)) throw Error(cat(item, ": cannot open: No such file or directory"));
      files.push_back(item);
    }
  }
  if (files.empty()) throw Error("--corpus: no files given");
  return files;
}

struct TrainFlags {
  std::optional<std::string> corpus, out, pattern, special;
  std::optional<int64_t> vocab_size, min_frequency;  // unset: the trainer's defaults
  bool individual_digits = false;
  // The first train-only flag given, or nullptr: without `train` it would be ignored.
  const char* given() const {
    return corpus ? "--corpus" : out ? "--out" : pattern ? "--pattern" : special ? "--special"
           : vocab_size ? "--vocab-size" : min_frequency ? "--min-frequency"
           : individual_digits ? "--individual-digits" : nullptr;
  }
};

int run_train(const TrainFlags& f, bool json) {
  if (!f.corpus || !f.out)
    throw Error("tokenize train needs --corpus FILES|DIR and --out FILE (mnemo tokenize train --help)");
  BpeTrainerConfig cfg;
  if (f.vocab_size) cfg.vocab_size = *f.vocab_size;
  if (f.min_frequency) cfg.min_frequency = *f.min_frequency;
  std::string pattern = f.pattern.value_or("gpt2");
  if (pattern == "gpt2") cfg.pre.pattern = SplitPattern::Gpt2;
  else if (pattern == "llama3") cfg.pre.pattern = SplitPattern::Llama3;
  else throw Error(cat("--pattern: '", pattern, "' is not gpt2 or llama3"));
  cfg.pre.individual_digits = f.individual_digits;
  if (f.special) {
    cfg.special_tokens.clear();
    std::stringstream ss(*f.special);
    std::string t;
    while (std::getline(ss, t, ',')) if (!t.empty()) cfg.special_tokens.push_back(t);
  }
  Timer timer;
  BpeTrainer trainer(cfg);
  auto files = list_corpus(*f.corpus);
  int64_t bytes = 0;
  for (const auto& file : files) {
    std::string text = read_file(file);
    bytes += int64_t(text.size());
    trainer.add_text(text, file);
  }
  auto tok = trainer.train();
  atomic_write(*f.out, tok->to_tokenizer_json().dump(0));
  Json r = Json::object();
  r["out"] = *f.out;
  r["files"] = int64_t(files.size());
  r["bytes"] = bytes;
  r["vocab_size"] = tok->vocab_size();
  r["merges"] = int64_t(tok->num_merges());
  r["seconds"] = timer.seconds();
  if (json) std::printf("%s\n", r.dump().c_str());
  else std::fprintf(stderr, "trained %lld tokens (%lld merges) on %lld bytes in %.2fs -> %s\n",
                    (long long)tok->vocab_size(), (long long)tok->num_merges(), (long long)bytes, timer.seconds(),
                    f.out->c_str());
  return 0;
}

int run(cli::Args& args) {
  cli::common_flags(args);
  auto path = args.get("--tokenizer");
  auto text_file = args.get("--text");
  auto decode_file = args.get("--decode");
  TrainFlags tf;
  tf.corpus = args.get("--corpus");
  tf.out = args.get("--out");
  tf.pattern = args.get("--pattern");
  tf.special = args.get("--special");
  if (args.get("--vocab-size")) tf.vocab_size = args.get_int("--vocab-size", 0);
  if (args.get("--min-frequency")) tf.min_frequency = args.get_int("--min-frequency", 0);
  tf.individual_digits = args.flag("--individual-digits");
  bool json = args.flag("--json");
  auto pos = args.positionals();
  args.finish();
  if (!pos.empty()) {
    if (pos[0] != "train" || pos.size() != 1) throw Error(cat("unknown sub-command '", pos[0], "' (the one sub-command is train)"));
    if (path || text_file || decode_file) throw Error("--tokenizer/--text/--decode do not apply to tokenize train");
    return run_train(tf, json);
  }
  if (const char* f = tf.given()) throw Error(cat(f, " belongs to 'mnemo tokenize train'"));
  if (!path) throw Error("--tokenizer PATH is required (mnemo tokenize --help)");
  if (!!text_file == !!decode_file) throw Error("give exactly one of --text FILE or --decode FILE.json");
  std::unique_ptr<Tokenizer> tok = load_any_tokenizer(*path);
  if (text_file) {
    std::string text = read_file(*text_file);
    size_t bad = unicode::find_invalid_utf8(text);
    if (bad != std::string::npos) throw Error(cat(*text_file, ": invalid UTF-8 at byte ", bad));
    std::vector<int32_t> ids = tok->encode(text);
    std::string out;
    out.reserve(ids.size() * 6 + 16);
    out += json ? "{\"ids\": [" : "";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += json ? ", " : " ";
      out += std::to_string(ids[i]);
    }
    out += json ? "]}\n" : "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  Json doc = Json::parse(read_file(*decode_file), *decode_file);
  const Json* idsj = doc.is_array() ? &doc : doc.find("ids");
  if (!idsj) throw Error(cat(*decode_file, ": expected {\"ids\": [...]} or an array of ids"));
  std::vector<int32_t> ids;
  for (const Json& v : idsj->as_array(cat(*decode_file, ": ids"))) ids.push_back(int32_t(v.as_int(cat(*decode_file, ": id"))));
  std::string text = tok->decode(ids);
  if (json) {
    Json r = Json::object();
    r["text"] = text;
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return 0;
}

MNEMO_VERB("tokenize", "text to token ids (--text FILE) or back (--decode FILE.json); 'tokenize train' learns a BPE",
           run, {{"", kUsage}, {"train", kTrainUsage}});

}  // namespace

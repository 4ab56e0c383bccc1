// mnemo train lm: causal-LM (GPT-2) or masked-LM (BERT) training on token ids or text, with checkpoints and
// --resume. A new model is described by flags (--arch gpt2|bert --n-layer ... ); an existing HF directory is
// continued with --model DIR. The trained model is written to --out DIR as an HF model directory (with the
// tokenizer files when one was given); resumable state goes to DIR/checkpoint.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "io/model_dir.h"
#include "text/tokenizer.h"
#include "token_data.h"
#include "train/lm_trainer.h"
#include "train_lm.h"

namespace mnemo::cli {

const char kTrainLmUsage[] =
    R"(usage: mnemo train [lm] --out DIR --data FILE (--model DIR | --tokenizer PATH | --vocab N) [options]
  --out DIR             the trained HF model directory; checkpoints in DIR/checkpoint (required)
  --data FILE           training tokens: FILE.json (ids), FILE.jsonl ({"text": ...} lines) or text (required)
  --val FILE            validation tokens, the same forms
  --model DIR           continue an HF GPT-2 or BERT directory (else a new model from the flags below)
  --tokenizer PATH      encodes text data (default: --model's); sets a new model's vocabulary
  --vocab N             a new model's vocabulary when there is no tokenizer
  --arch gpt2|bert      a new model's architecture (default gpt2)
  --n-layer N           layers (default 4)
  --d-model N           width (default 256)
  --n-head N            attention heads (default 4)
  --context N           positions (default max(--seq, 128))
  --objective clm|mlm   default: clm for GPT-2, mlm for BERT
  --mask-id N           mlm's mask token (default: the tokenizer's [MASK])
  --steps N             optimizer steps (default 1000)
  --batch N             sequences per step (default 8)
  --seq N               tokens per sequence (default 128)
  --lr X                peak learning rate (default 3e-4)
  --warmup N            warmup steps (default min(100, steps / 10))
  --final-lr-fraction X the last step's learning rate over the peak (default 0.1)
  --weight-decay X      AdamW weight decay (default 0.1)
  --clip X              gradient-norm clip (default 1.0)
  --eval-every N        validate every N steps (default 100)
  --eval-batches N      validation batches (default 8)
  --save-every N        checkpoint every N steps (default 0: at the end only)
  --stop-at N           checkpoint and stop after step N (continue with --resume)
  --seed N              (default 0)
  --resume              continue from DIR/checkpoint
  --json                a JSON summary
)";

namespace {

namespace fs = std::filesystem;

// Copy the tokenizer files found at PATH (a directory or one file) into DIR, so DIR is a complete model directory.
void copy_tokenizer_files(const std::string& path, const std::string& dir) {
  std::vector<fs::path> files;
  if (is_directory(path)) {
    for (const char* n : {"tokenizer.json", "tokenizer_config.json", "vocab.txt", "encoder.json", "vocab.bpe",
                          "special_tokens_map.json"})
      if (file_exists(join_path(path, n))) files.emplace_back(join_path(path, n));
  } else {
    fs::path p(path);
    files.push_back(p);
    if (p.filename() == "encoder.json") files.push_back(p.parent_path() / "vocab.bpe");
    if (p.filename() == "vocab.bpe") files.push_back(p.parent_path() / "encoder.json");
  }
  for (auto& f : files) atomic_write(join_path(dir, f.filename().string()), read_file(f.string()));
}

// A new model's shape, from the flags (read before any data is loaded).
struct NewModelFlags {
  std::string arch = "gpt2";
  int64_t layers = 4, d = 256, heads = 4, context = 128, vocab = 0;
};

LoadedModel new_model(const NewModelFlags& f, uint64_t seed) {
  const int64_t layers = f.layers, d = f.d, heads = f.heads, context = f.context, vocab = f.vocab;
  LoadedModel m;
  m.type = f.arch;
  if (f.arch == "gpt2") {
    Json j = Json::object();
    j["model_type"] = "gpt2";
    j["n_layer"] = layers;
    j["n_head"] = heads;
    j["n_embd"] = d;
    j["n_positions"] = context;
    j["vocab_size"] = vocab;
    m.gpt2 = std::make_unique<Gpt2>(Gpt2Config::from_json(j, "flags"));
    m.gpt2->init_random(seed);
  } else {  // bert (the flag is checked before the data is read)
    Json j = Json::object();
    j["model_type"] = "bert";
    j["architectures"] = Json(Json::Array{Json("BertForMaskedLM")});
    j["num_hidden_layers"] = layers;
    j["num_attention_heads"] = heads;
    j["hidden_size"] = d;
    j["intermediate_size"] = 4 * d;
    j["max_position_embeddings"] = context;
    j["vocab_size"] = vocab;
    m.bert = std::make_unique<Bert>(BertConfig::from_json(j, "flags"));
    m.bert->init_random(seed);
  }
  return m;
}

}  // namespace

int run_train_lm(Args& args) {
  args.leading("lm");  // `mnemo train lm ...` and `mnemo train ...` are the same
  common_flags(args);
  auto model_dir = args.get("--model");
  std::string out = args.require("--out");
  std::string data = args.require("--data");
  std::string val = args.get_or("--val", "");
  auto tok_path = args.get("--tokenizer");
  LmTrainConfig c;
  c.steps = args.get_int("--steps", 1000);
  c.batch = args.get_int("--batch", 8);
  c.seq = args.get_int("--seq", 128);
  c.lr = args.get_double("--lr", 3e-4);
  c.warmup = args.get_int("--warmup", std::min<int64_t>(100, c.steps / 10));
  c.final_lr_fraction = args.get_double("--final-lr-fraction", 0.1);
  c.adamw.weight_decay = float(args.get_double("--weight-decay", 0.1));
  c.clip = args.get_double("--clip", 1.0);
  c.eval_every = args.get_int("--eval-every", 100);
  c.eval_batches = args.get_int("--eval-batches", 8);
  c.save_every = args.get_int("--save-every", 0);
  c.seed = uint64_t(args.get_int("--seed", 0));
  c.stop_at = args.get_int("--stop-at", 0);
  std::string objective = args.get_or("--objective", "");
  int64_t mask_id = args.get_int("--mask-id", -1);
  bool resume = args.flag("--resume");
  bool json = args.flag("--json");
  // A new model's flags, read here so finish() can run before the data and the model are loaded; with --model
  // the directory's config decides, so they are refused rather than ignored.
  NewModelFlags nf;
  const char* shape_flags[] = {"--arch", "--n-layer", "--d-model", "--n-head", "--context", "--vocab"};
  nf.arch = args.get_or("--arch", nf.arch);
  nf.layers = args.get_int("--n-layer", nf.layers);
  nf.d = args.get_int("--d-model", nf.d);
  nf.heads = args.get_int("--n-head", nf.heads);
  nf.context = args.get_int("--context", std::max<int64_t>(c.seq, nf.context));
  nf.vocab = args.get_int("--vocab", 0);
  args.finish();
  if (c.steps <= 0) throw Error("--steps must be positive");
  if (c.stop_at < 0) throw Error(cat("--stop-at must be non-negative, got ", c.stop_at));
  if (!objective.empty() && objective != "clm" && objective != "mlm")
    throw Error(cat("--objective must be clm or mlm, not '", objective, "'"));
  if (model_dir) {
    for (const char* f : shape_flags)
      if (args.get(f)) throw Error(cat(f, " does not apply with --model (the directory's config decides)"));
  } else {
    if (nf.arch != "gpt2" && nf.arch != "bert") throw Error(cat("--arch must be gpt2 or bert, not '", nf.arch, "'"));
    if (tok_path && args.get("--vocab"))
      throw Error("--vocab does not apply with --tokenizer (the tokenizer's vocabulary is the model's)");
    if (!tok_path && nf.vocab <= 0) throw Error("a new model needs --tokenizer PATH or --vocab N");
  }

  std::unique_ptr<Tokenizer> tok;
  if (tok_path) tok = load_tokenizer(*tok_path);
  else if (model_dir) {
    try {
      tok = load_tokenizer(*model_dir);
    } catch (const Error&) {  // a model directory without tokenizer files: ids only
    }
  }
  auto train_ids = read_token_data(data, tok.get());
  std::vector<int32_t> val_ids;
  if (!val.empty()) val_ids = read_token_data(val, tok.get());

  LoadedModel m;
  if (model_dir) {
    m = load_model_dir(*model_dir);
  } else {
    if (tok) nf.vocab = tok->vocab_size();
    m = new_model(nf, c.seed);
  }

  c.objective = objective.empty() ? (m.gpt2 ? LmObjective::Causal : LmObjective::Masked)
                : objective == "clm"  ? LmObjective::Causal
                                      : LmObjective::Masked;
  if (c.objective == LmObjective::Causal && args.get("--mask-id"))
    throw Error("--mask-id is for the mlm objective (a causal LM masks nothing)");
  if (c.objective == LmObjective::Masked)
    c.mask_id = int32_t(mask_id >= 0 ? mask_id : tok ? tok->special_id("[MASK]") : -1);
  make_directories(out);
  c.checkpoint = join_path(out, "checkpoint");

  LmTrainLog log = train_lm(m, train_ids, val_ids, c, resume);
  if (m.gpt2) save_model_dir(out, *m.gpt2);
  else save_model_dir(out, *m.bert);
  if (tok_path) copy_tokenizer_files(*tok_path, out);
  else if (model_dir) copy_tokenizer_files(*model_dir, out);

  Json r = Json::object();
  r["out"] = out;
  r["steps"] = c.steps;
  r["resumed_from"] = log.start_step;
  r["train_tokens"] = int64_t(train_ids.size());
  r["tokens_per_second"] = log.tokens_per_second;
  if (!log.train_loss.empty()) r["final_train_loss"] = log.train_loss.back().second;
  Json losses = Json::array();
  for (auto& [s, l] : log.train_loss) losses.push_back(l);
  r["train_loss"] = losses;
  if (!log.val_loss.empty()) {
    r["final_val_loss"] = log.val_loss.back().second;
    r["final_val_ppl"] = std::exp(log.val_loss.back().second);
  }
  if (json) std::printf("%s\n", r.dump().c_str());
  else std::printf("trained %lld steps -> %s (val loss %s)\n", (long long)c.steps, out.c_str(),
                   log.val_loss.empty() ? "n/a" : std::to_string(log.val_loss.back().second).c_str());
  return 0;
}

}  // namespace mnemo::cli

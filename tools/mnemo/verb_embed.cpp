// mnemo embed --model DIR --ids FILE [--pool mean] [--batch N] [--json]: the final hidden states of a BERT or
// GPT-2 model directory for token ids. FILE is a JSON array of ids (one sequence) or an array of arrays (several).
// Sequences are run in batches padded to their longest member (padding keys masked); --pool mean averages each
// sequence's token vectors (sentence-transformers' mean pooling over the attention mask). Output: one JSON object
// {"model", "dim", "pool", "sequences", "embeddings"} where embeddings is (S, dim) pooled or (S, T_s, dim).
#include <algorithm>
#include <cstdio>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/timer.h"
#include "cli.h"
#include "io/model_dir.h"

namespace {

using namespace mnemo;

constexpr const char* kUsage =
    R"(usage: mnemo embed --model DIR --ids FILE.json [--pool none|mean] [--batch N] [--precision fp32|bf16]
  --model DIR           a BERT or GPT-2 HF model directory (required)
  --ids FILE.json       an array of ids (one sequence) or an array of arrays (required)
  --pool none|mean      none: every token's vector (default); mean: one vector per sequence
  --batch N             sequences per forward (default 32)
  --precision P         fp32 (default) or bf16: BERT's linear layers in bf16, about twice as fast on a CPU
                        with bf16 arithmetic, vectors within ~1 % of fp32
  --json                accepted; the output is JSON either way
)";

std::vector<std::vector<int32_t>> read_ids(const std::string& path) {
  Json j = Json::parse(read_file(path), path);
  const auto& top = j.as_array(path);
  std::vector<std::vector<int32_t>> seqs;
  auto one = [&](const Json& arr, const std::string& what) {
    std::vector<int32_t> ids;
    for (const auto& v : arr.as_array(what)) {
      int64_t id = v.as_int(what);
      if (id < 0 || id > INT32_MAX) throw Error(cat(what, ": id ", id, " out of range"));
      ids.push_back(int32_t(id));
    }
    if (ids.empty()) throw Error(cat(what, ": empty sequence"));
    return ids;
  };
  if (!top.empty() && top[0].is_array()) {
    for (size_t i = 0; i < top.size(); ++i) seqs.push_back(one(top[i], cat(path, ": sequence ", i)));
  } else {
    seqs.push_back(one(j, path));
  }
  if (seqs.empty()) throw Error(cat(path, ": no sequences"));
  return seqs;
}

int run(cli::Args& args) {
  cli::common_flags(args);
  const std::string dir = args.require("--model");
  const std::string ids_path = args.require("--ids");
  const std::string pool = args.get_or("--pool", "none");
  const int64_t batch = args.get_int("--batch", 32);
  const Precision precision = parse_precision(args.get_or("--precision", "fp32"), "--precision");
  args.flag("--json");  // the output is JSON either way
  args.finish();
  if (pool != "none" && pool != "mean") throw Error(cat("--pool: '", pool, "' is not none or mean"));
  if (batch < 1) throw Error("--batch: must be at least 1");

  const auto seqs = read_ids(ids_path);
  LoadedModel m = load_model_dir(dir);
  if (precision != Precision::fp32) {
    if (!m.bert) throw Error(cat(dir, ": --precision ", precision_name(precision), " is for BERT models"));
    m.bert->set_precision(precision);
  }
  const int64_t C = m.bert ? m.bert->config().hidden_size : m.gpt2->config().n_embd;
  Tape tape(Tape::Mode::Inference);
  Json out_rows = Json::array();
  Timer timer;
  const int64_t S = int64_t(seqs.size());
  for (int64_t s0 = 0; s0 < S; s0 += batch) {
    const int64_t B = std::min(batch, S - s0);
    int64_t T = 0;
    for (int64_t b = 0; b < B; ++b) T = std::max<int64_t>(T, int64_t(seqs[size_t(s0 + b)].size()));
    std::vector<int32_t> ids(size_t(B * T), 0);  // (B,T), padded with id 0 (masked)
    std::vector<uint8_t> valid(size_t(B * T), 0);
    for (int64_t b = 0; b < B; ++b) {
      const auto& sq = seqs[size_t(s0 + b)];
      std::copy(sq.begin(), sq.end(), ids.begin() + b * T);
      std::fill(valid.begin() + b * T, valid.begin() + b * T + int64_t(sq.size()), 1);
    }
    tape.reset();
    Var h;
    try {
      h = m.bert ? m.bert->encode(tape, ids.data(), nullptr, valid.data(), B, T)
                 : m.gpt2->hidden_states(tape, ids.data(), B, T, valid.data());  // (B*T, C)
    } catch (const Error& e) {
      throw Error(cat(ids_path, ": ", e.what()));
    }
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = int64_t(seqs[size_t(s0 + b)].size());
      const float* rows = h.data() + b * T * C;
      if (pool == "mean") {
        Json v = Json::array();
        for (int64_t c = 0; c < C; ++c) {
          double acc = 0;
          for (int64_t i = 0; i < n; ++i) acc += rows[i * C + c];
          v.push_back(acc / double(n));
        }
        out_rows.push_back(std::move(v));
      } else {
        Json toks = Json::array();
        for (int64_t i = 0; i < n; ++i) {
          Json v = Json::array();
          for (int64_t c = 0; c < C; ++c) v.push_back(double(rows[i * C + c]));
          toks.push_back(std::move(v));
        }
        out_rows.push_back(std::move(toks));
      }
    }
  }
  Json j = Json::object();
  j["model"] = dir;
  j["type"] = m.type;
  j["dim"] = C;
  j["pool"] = pool;
  j["precision"] = precision_name(precision);
  j["sequences"] = S;
  j["seconds"] = timer.seconds();
  j["embeddings"] = std::move(out_rows);
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

MNEMO_VERB("embed", "final hidden states (or mean-pooled vectors) of a BERT/GPT-2 model for token ids", run, kUsage);

}  // namespace

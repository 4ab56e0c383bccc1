#include "memory/rmt_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "autograd/ops.h"
#include "base/error.h"
#include "memory/rmt_ops.h"

namespace mnemo {

// ---- config ----

Json RmtDecoderConfig::to_json() const {
  Json j = Json::object();
  j["variant"] = "decoder";
  j["num_mem_tokens"] = num_mem_tokens;
  j["segment_tokens"] = segment_tokens;
  j["max_answer_tokens"] = max_answer_tokens;
  j["eos_id"] = int64_t(eos_id);
  j["pad_id"] = int64_t(pad_id);
  if (sink_id >= 0) j["sink_id"] = int64_t(sink_id);
  return j;
}

RmtDecoderConfig RmtDecoderConfig::from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(cat(source, ": \"rmt\" must be an object"));
  if (j.string_or("variant", "") != "decoder") throw Error(cat(source, ": rmt.variant must be \"decoder\""));
  RmtDecoderConfig c;
  auto required = [&](const char* key) {
    const Json* v = j.find(key);
    if (!v || !v->is_number()) throw Error(cat(source, ": rmt.", key, " is missing (an integer)"));
    return v->as_int(cat(source, ": rmt.", key));
  };
  c.num_mem_tokens = required("num_mem_tokens");
  c.segment_tokens = required("segment_tokens");
  c.max_answer_tokens = j.int_or("max_answer_tokens", c.max_answer_tokens);
  c.eos_id = int32_t(required("eos_id"));
  c.pad_id = int32_t(j.int_or("pad_id", c.pad_id));
  c.sink_id = int32_t(j.int_or("sink_id", c.sink_id));  // models saved before the sink token have none
  return c;
}

void RmtDecoderConfig::validate(const LlamaConfig& b, const std::string& source) const {
  if (num_mem_tokens <= 0) throw Error(cat(source, ": rmt.num_mem_tokens must be positive"));
  if (segment_tokens <= 0) throw Error(cat(source, ": rmt.segment_tokens must be positive"));
  if (max_answer_tokens <= 0) throw Error(cat(source, ": rmt.max_answer_tokens must be positive"));
  if (write_len() + max_answer_tokens > b.max_position_embeddings)
    throw Error(cat(source, ": rmt segment of ", write_len(), " positions (", segment_tokens, " text + 2 x ",
                    num_mem_tokens, " memory) exceeds max_position_embeddings ", b.max_position_embeddings));
  if (sink_id < -1 || sink_id >= b.vocab_size)
    throw Error(cat(source, ": rmt.sink_id ", sink_id, " outside the vocabulary [0, ", b.vocab_size, ") (or -1: none)"));
  for (int32_t id : {eos_id, pad_id})
    if (id < 0 || id >= b.vocab_size)
      throw Error(cat(source, ": rmt special token id ", id, " outside the vocabulary [0, ", b.vocab_size, ")"));
}

// ---- the decoder ----

RmtDecoder::RmtDecoder(const LlamaConfig& backbone, const RmtDecoderConfig& rmt) : cfg_(rmt) {
  cfg_.validate(backbone, "RMT decoder config");
  llama_ = std::make_unique<Llama>(backbone);
  mem_params_.declare("rmt.memory", {cfg_.num_mem_tokens, backbone.hidden_size});  // (m,C)
  mem_params_.allocate();
}

Parameter& RmtDecoder::embeddings() {
  Parameter* p = llama_->params().find("model.embed_tokens.weight");
  MNEMO_CHECK(p != nullptr, "RMT decoder: backbone has no model.embed_tokens.weight");
  return *p;
}

void RmtDecoder::init_memory(uint64_t seed) {
  init_memory_from_embeddings(mem_params_[0].value, embeddings().value, seed);
}

Var RmtDecoder::initial_memory(Tape& t, int64_t B) { return repeat_memory(t, mem_params_, 0, B); }

namespace {

void check_memory(const Var& memory, int64_t B, int64_t m, int64_t C) {
  MNEMO_CHECK(memory.value.numel() == B * m * C, "RMT decoder: memory ", shape_str(memory.shape()), " for B=", B);
}

void check_id(int32_t id, int64_t V) {
  if (id < 0 || id >= V) throw Error(cat("RMT decoder: token id ", id, " outside the vocabulary [0, ", V, ")"));
}

}  // namespace

Var RmtDecoder::write(Tape& t, const int32_t* text, const int32_t* lengths, int64_t B, const Var& memory) {
  const int64_t m = cfg_.num_mem_tokens, L = cfg_.segment_tokens, T = cfg_.write_len(), N = B * T;
  const int64_t V = llama_->config().vocab_size, p = cfg_.prefix();
  check_memory(memory, B, m, d_model());
  auto* ids = static_cast<int32_t*>(t.alloc_bytes(size_t(N) * sizeof(int32_t)));  // (B,T)
  auto* valid = static_cast<uint8_t*>(t.alloc_bytes(size_t(N)));                 // (B,T) 0 = padding key
  std::vector<int64_t> read_rows(size_t(B * m)), write_rows(size_t(B * m));     // (B*m) rows of x
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lengths[b];
    if (n < 0 || n > L) throw Error(cat("RMT decoder: segment row ", b, " has ", n, " tokens, expected 0..", L));
    int32_t* row = ids + b * T;
    uint8_t* vrow = valid + b * T;
    std::fill(row, row + T, cfg_.pad_id);
    if (p) row[0] = cfg_.sink_id;
    std::fill(vrow, vrow + T, uint8_t(1));
    std::fill(vrow + p + m + n, vrow + p + m + L, uint8_t(0));
    for (int64_t i = 0; i < n; ++i) check_id(text[b * L + i], V), row[p + m + i] = text[b * L + i];
    for (int64_t j = 0; j < m; ++j) {
      read_rows[size_t(b * m + j)] = b * T + p + j;
      write_rows[size_t(b * m + j)] = b * T + p + m + L + j;
    }
  }
  Var x = llama_->embed(t, ids, N);                 // (N,C)
  x = ag::scatter_rows(t, x, read_rows, memory);    // the memory at the read positions
  x = ag::scatter_rows(t, x, write_rows, memory);   // ... and at the write positions
  Var h = llama_->forward_embedded(t, x, B, T, valid);  // (N,C) after the final norm
  return ag::select_rows(t, h, write_rows);              // (B*m, C)
}

Var RmtDecoder::read(Tape& t, const int32_t* tokens, const int32_t* lengths, int64_t B, int64_t W,
                     const Var& memory) {
  const int64_t m = cfg_.num_mem_tokens, p = cfg_.prefix(), T = p + m + W, N = B * T;
  const int64_t V = llama_->config().vocab_size;
  check_memory(memory, B, m, d_model());
  if (W < 1) throw Error("RMT decoder: the last segment is empty");
  auto* ids = static_cast<int32_t*>(t.alloc_bytes(size_t(N) * sizeof(int32_t)));  // (B,T)
  std::vector<int64_t> read_rows(size_t(B * m));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lengths[b];
    if (n < 1 || n > W)
      throw Error(cat("RMT decoder: the last segment's row ", b, " has ", n, " tokens, expected 1..", W));
    int32_t* row = ids + b * T;
    std::fill(row, row + T, cfg_.pad_id);  // after the row's end: causal attention hides it from the real tokens
    if (p) row[0] = cfg_.sink_id;
    for (int64_t i = 0; i < n; ++i) check_id(tokens[b * W + i], V), row[p + m + i] = tokens[b * W + i];
    for (int64_t j = 0; j < m; ++j) read_rows[size_t(b * m + j)] = b * T + p + j;
  }
  Var x = llama_->embed(t, ids, N);
  x = ag::scatter_rows(t, x, read_rows, memory);
  return llama_->forward_embedded(t, x, B, T, nullptr);  // (N,C)
}

// ---- BPTT and streaming ----

namespace {

// The last segment of a batch with the answers teacher-forced: tokens (B, W) = text then the answer without its
// final token (that one is only predicted), and for every (row, answer token) the hidden row predicting it.
struct LastSegment {
  int64_t W = 0;
  std::vector<int32_t> tokens, lengths;  // (B, W), (B)
  std::vector<int64_t> rows;             // (B*A) rows of the (B*(m+W), C) hidden states
  std::vector<int32_t> targets;          // (B*A), -1 past an answer's end
};

// `before`: positions before the text in the last segment (sink token and read memory).
LastSegment last_segment(const RmtDecoderBatch& batch, int64_t L, int64_t before) {
  const int64_t B = batch.B, A = batch.A;
  const int32_t* text = batch.text.data() + (batch.S - 1) * B * L;
  const int32_t* lens = batch.lengths.data() + (batch.S - 1) * B;
  LastSegment s;
  std::vector<int64_t> alen(size_t(B), 0);
  for (int64_t b = 0; b < B; ++b) {
    while (alen[size_t(b)] < A && batch.answers[size_t(b * A + alen[size_t(b)])] >= 0) ++alen[size_t(b)];
    if (alen[size_t(b)] == 0) throw Error(cat("RMT decoder: row ", b, " has no answer tokens"));
    if (lens[b] < 1 || lens[b] > L)
      throw Error(cat("RMT decoder: the last segment's row ", b, " has ", lens[b], " tokens, expected 1..", L));
    s.W = std::max<int64_t>(s.W, lens[b] + alen[size_t(b)] - 1);
  }
  s.tokens.assign(size_t(B * s.W), 0);
  s.lengths.assign(size_t(B), 0);
  s.rows.assign(size_t(B * A), 0);
  s.targets.assign(size_t(B * A), -1);
  const int64_t T = before + s.W;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lens[b], a = alen[size_t(b)];
    int32_t* row = s.tokens.data() + b * s.W;
    std::copy(text + b * L, text + b * L + n, row);
    for (int64_t k = 0; k + 1 < a; ++k) row[n + k] = batch.answers[size_t(b * A + k)];
    s.lengths[size_t(b)] = int32_t(n + a - 1);
    for (int64_t k = 0; k < A; ++k) {
      s.rows[size_t(b * A + k)] = b * T + before + n - 1 + std::min(k, a - 1);
      if (k < a) s.targets[size_t(b * A + k)] = batch.answers[size_t(b * A + k)];
    }
  }
  return s;
}

// Loss, accuracy and logits of the answer positions of the last segment's hidden states.
void score_answers(RmtDecoder& model, Tape& t, const Var& hidden, const LastSegment& s, const RmtDecoderBatch& batch,
                   RmtDecoderResult& r, Var* loss_out) {
  const int64_t B = batch.B, A = batch.A, V = model.backbone().config().vocab_size;
  for (int32_t y : s.targets)
    if (y >= V) throw Error(cat("RMT decoder: answer token ", y, " outside the vocabulary [0, ", V, ")"));
  Var logits = model.backbone().lm_head(t, ag::select_rows(t, hidden, s.rows));  // (B*A, V)
  auto* targets = static_cast<int32_t*>(t.alloc_bytes(size_t(B * A) * sizeof(int32_t)));
  std::copy(s.targets.begin(), s.targets.end(), targets);
  Var loss = ag::cross_entropy(t, logits, targets);
  r.loss = loss.data()[0];
  r.logits.assign(size_t(B * A * V), 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    bool ok = true;
    for (int64_t k = 0; k < A; ++k) {
      const int32_t y = s.targets[size_t(b * A + k)];
      if (y < 0) continue;
      const float* row = logits.data() + (b * A + k) * V;
      std::copy(row, row + V, r.logits.begin() + (b * A + k) * V);
      ok &= int32_t(std::max_element(row, row + V) - row) == y;
    }
    ++r.counted;
    r.correct += ok;
  }
  if (loss_out) *loss_out = loss;
}

}  // namespace

namespace {

void check_batch(const RmtDecoder& model, const RmtDecoderBatch& batch) {
  const int64_t B = batch.B, S = batch.S, A = batch.A, L = model.config().segment_tokens;
  if (S < 1 || B < 1) throw Error("RMT decoder: empty batch");
  if (A < 1) throw Error("RMT decoder: the batch has no answers");
  MNEMO_CHECK(int64_t(batch.text.size()) == S * B * L && int64_t(batch.lengths.size()) == S * B &&
                  int64_t(batch.answers.size()) == B * A,
              "RMT decoder: batch arrays do not match B=", B, " S=", S, " L=", L, " A=", A);
}

// Segments first..S-1 on `tape`, `memory` (B*m, C) entering segment `first`, up to the loss (1); fills r.
Var loss_from(RmtDecoder& model, Tape& tape, const RmtDecoderBatch& batch, int64_t first, Var memory,
              RmtDecoderResult& r) {
  const int64_t B = batch.B, L = model.config().segment_tokens, m = model.config().num_mem_tokens;
  const LastSegment last = last_segment(batch, L, model.config().prefix() + m);
  for (int64_t s = first; s + 1 < batch.S; ++s)
    memory = model.write(tape, batch.text.data() + s * B * L, batch.lengths.data() + s * B, B, memory);
  r.memory_norm = mean_row_norm(memory.data(), B * m, model.d_model());
  Var hidden = model.read(tape, last.tokens.data(), last.lengths.data(), B, last.W, memory);
  Var loss;
  score_answers(model, tape, hidden, last, batch, r, &loss);
  return loss;
}

}  // namespace

Var rmt_decoder_loss(RmtDecoder& model, Tape& tape, const RmtDecoderBatch& batch, RmtDecoderResult* r) {
  check_batch(model, batch);
  RmtDecoderResult unused;
  return loss_from(model, tape, batch, 0, model.initial_memory(tape, batch.B), r ? *r : unused);
}

RmtDecoderResult rmt_decoder_forward(RmtDecoder& model, Tape& tape, Tape& scratch, const RmtDecoderBatch& batch,
                                     int64_t bptt_depth) {
  check_batch(model, batch);
  MNEMO_CHECK(!scratch.recording(), "rmt_decoder_forward: scratch must be an inference tape");
  const int64_t B = batch.B, S = batch.S, L = model.config().segment_tokens, m = model.config().num_mem_tokens;
  const bool train = tape.recording();
  // Memory segments before `first` run forward-only, one at a time; with an inference tape, all of them do.
  const int64_t first = !train ? S - 1 : (bptt_depth > 0 ? std::max<int64_t>(0, S - bptt_depth) : 0);
  Tensor mem = Tensor::zeros({B * m, model.d_model()});  // (B*m, C) handed between forward-only segments
  Tape& fwd = train ? scratch : tape;
  for (int64_t s = 0; s < first; ++s) {
    fwd.reset();
    Var in = s == 0 ? model.initial_memory(fwd, B) : constant_input(mem);
    Var out = model.write(fwd, batch.text.data() + s * B * L, batch.lengths.data() + s * B, B, in);
    std::memcpy(mem.data(), out.data(), size_t(mem.numel()) * sizeof(float));
  }
  fwd.reset();
  tape.reset();
  RmtDecoderResult r;
  Var loss = loss_from(model, tape, batch, first, first == 0 ? model.initial_memory(tape, B) : constant_input(mem), r);
  if (train && loss.needs_grad()) tape.backward(loss);
  if (!train) tape.reset();
  return r;
}

RmtDecoderStreamer::RmtDecoderStreamer(RmtDecoder& model, Tape& tape, int64_t B)
    : model_(model), tape_(tape), B_(B) {
  MNEMO_CHECK(!tape.recording(), "RmtDecoderStreamer needs an inference tape");
  mem_ = Tensor::zeros({B * model.config().num_mem_tokens, model.d_model()});
}

Var RmtDecoderStreamer::memory_in() { return segments_ == 0 ? model_.initial_memory(tape_, B_) : constant_input(mem_); }

void RmtDecoderStreamer::step(const int32_t* text, const int32_t* lengths) {
  tape_.reset();
  Var out = model_.write(tape_, text, lengths, B_, memory_in());
  std::memcpy(mem_.data(), out.data(), size_t(mem_.numel()) * sizeof(float));
  ++segments_;
}

std::vector<float> RmtDecoderStreamer::next_logits(const int32_t* tokens, const int32_t* lengths, int64_t W) {
  tape_.reset();
  const int64_t before = model_.config().prefix() + model_.config().num_mem_tokens, T = before + W;
  Var hidden = model_.read(tape_, tokens, lengths, B_, W, memory_in());  // (B*T, C)
  std::vector<int64_t> last(static_cast<size_t>(B_));
  for (int64_t b = 0; b < B_; ++b) last[size_t(b)] = b * T + before + lengths[b] - 1;
  Var lg = model_.backbone().lm_head(tape_, ag::select_rows(tape_, hidden, last));  // (B, V)
  std::vector<float> out(lg.data(), lg.data() + lg.value.numel());
  tape_.reset();
  return out;
}

std::vector<std::vector<int32_t>> RmtDecoderStreamer::answer(const int32_t* text, const int32_t* lengths) {
  const int64_t L = model_.config().segment_tokens, K = model_.config().max_answer_tokens;
  const int64_t V = model_.backbone().config().vocab_size, W = L + K - 1;
  std::vector<int32_t> tokens(static_cast<size_t>(B_ * W), model_.config().pad_id), lens(static_cast<size_t>(B_));  // (B, W), (B)
  for (int64_t b = 0; b < B_; ++b) {
    if (lengths[b] < 1 || lengths[b] > L)
      throw Error(cat("RMT decoder: the last segment's row ", b, " has ", lengths[b], " tokens, expected 1..", L));
    std::copy(text + b * L, text + b * L + lengths[b], tokens.begin() + b * W);
    lens[size_t(b)] = lengths[b];
  }
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(B_));
  std::vector<uint8_t> done(static_cast<size_t>(B_), 0);
  for (int64_t k = 0; k < K; ++k) {
    // The shortest width that holds every row so far (rows that are done keep their length).
    const int64_t w = *std::max_element(lens.begin(), lens.end());
    std::vector<int32_t> cur(size_t(B_ * w));
    for (int64_t b = 0; b < B_; ++b) std::copy(tokens.begin() + b * W, tokens.begin() + b * W + w, cur.begin() + b * w);
    std::vector<float> lg = next_logits(cur.data(), lens.data(), w);  // (B, V)
    bool all = true;
    for (int64_t b = 0; b < B_; ++b) {
      if (done[size_t(b)]) continue;
      const float* row = lg.data() + b * V;
      const int32_t y = int32_t(std::max_element(row, row + V) - row);
      if (y == model_.config().eos_id) {
        done[size_t(b)] = 1;
        continue;
      }
      out[size_t(b)].push_back(y);
      if (k + 1 < K) tokens[size_t(b * W + lens[size_t(b)])] = y, ++lens[size_t(b)];
      all = false;
    }
    if (all) break;
  }
  return out;
}

double RmtDecoderStreamer::memory_norm() const { return mean_row_norm(mem_.data(), mem_.dim(0), mem_.dim(1)); }

}  // namespace mnemo

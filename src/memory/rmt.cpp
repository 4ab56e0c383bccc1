#include "memory/rmt.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "autograd/ops.h"
#include "base/error.h"
#include "memory/rmt_ops.h"

namespace mnemo {

// ---- config ----

Json RmtConfig::to_json() const {
  Json j = Json::object();
  j["num_mem_tokens"] = num_mem_tokens;
  j["segment_tokens"] = segment_tokens;
  j["cls_id"] = int64_t(cls_id);
  j["sep_id"] = int64_t(sep_id);
  j["pad_id"] = int64_t(pad_id);
  Json l = Json::array();
  for (auto& s : labels) l.push_back(Json(s));
  j["labels"] = l;
  return j;
}

RmtConfig RmtConfig::from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) throw Error(cat(source, ": \"rmt\" must be an object"));
  RmtConfig c;
  c.num_mem_tokens = j.int_or("num_mem_tokens", c.num_mem_tokens);
  c.segment_tokens = j.int_or("segment_tokens", c.segment_tokens);
  c.cls_id = int32_t(j.int_or("cls_id", c.cls_id));
  c.sep_id = int32_t(j.int_or("sep_id", c.sep_id));
  c.pad_id = int32_t(j.int_or("pad_id", c.pad_id));
  const Json* l = j.find("labels");
  if (!l || !l->is_array() || l->size() == 0) throw Error(cat(source, ": rmt.labels must be a non-empty array"));
  for (auto& s : l->as_array()) c.labels.push_back(s.as_string(source + ": rmt.labels"));
  return c;
}

void RmtConfig::validate(const BertConfig& b, const std::string& source) const {
  if (num_mem_tokens <= 0) throw Error(cat(source, ": rmt.num_mem_tokens must be positive"));
  if (segment_tokens <= 0) throw Error(cat(source, ": rmt.segment_tokens must be positive"));
  if (seq_len() > b.max_position_embeddings)
    throw Error(cat(source, ": rmt segment of ", seq_len(), " positions (", segment_tokens, " text + ", num_mem_tokens,
                    " memory + 3 special) exceeds max_position_embeddings ", b.max_position_embeddings));
  for (int32_t id : {cls_id, sep_id, pad_id})
    if (id < 0 || id >= b.vocab_size)
      throw Error(cat(source, ": rmt special token id ", id, " outside the vocabulary [0, ", b.vocab_size, ")"));
  if (labels.empty()) throw Error(cat(source, ": rmt.labels is empty"));
  if (b.head != BertHead::SequenceClassification || b.num_labels != int64_t(labels.size()))
    throw Error(cat(source, ": the RMT backbone must be BertForSequenceClassification with num_labels ",
                    labels.size()));
}

// ---- the encoder ----

RmtEncoder::RmtEncoder(const BertConfig& backbone, const RmtConfig& rmt) : cfg_(rmt) {
  cfg_.validate(backbone, "RMT config");
  bert_ = std::make_unique<Bert>(backbone);
  mem_params_.declare("rmt.memory", {cfg_.num_mem_tokens, backbone.hidden_size});  // (m,C)
  mem_params_.allocate();
  const Parameter* word = bert_->params().find(bert_->prefix() + "embeddings.word_embeddings.weight");
  MNEMO_CHECK(word != nullptr, "RMT: backbone has no word embeddings");
  word_ = int64_t(word - bert_->params().all().data());
}

void RmtEncoder::init_memory(uint64_t seed) {
  init_memory_from_embeddings(mem_params_[0].value, bert_->params()[word_].value, seed);
}

Var RmtEncoder::initial_memory(Tape& t, int64_t B) { return repeat_memory(t, mem_params_, 0, B); }

RmtEncoder::SegmentOut RmtEncoder::segment(Tape& t, const int32_t* text, const int32_t* lengths, int64_t B,
                                           const Var& memory, const LayerObserver* observer) {
  const int64_t m = cfg_.num_mem_tokens, L = cfg_.segment_tokens, T = cfg_.seq_len(), N = B * T;
  const int64_t V = bert_->config().vocab_size;
  MNEMO_CHECK(memory.value.numel() == B * m * d_model(), "RMT: memory ", shape_str(memory.shape()), " for B=", B);
  auto* ids = static_cast<int32_t*>(t.alloc_bytes(size_t(N) * sizeof(int32_t)));  // (B,T)
  auto* valid = static_cast<uint8_t*>(t.alloc_bytes(size_t(N)));                 // (B,T) 0 = padding key
  std::vector<int64_t> mem_rows(size_t(B * m));                                  // (B*m) rows of x
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lengths[b];
    if (n < 0 || n > L) throw Error(cat("RMT: segment row ", b, " has ", n, " tokens, expected 0..", L));
    int32_t* row = ids + b * T;
    uint8_t* vrow = valid + b * T;
    std::fill(row, row + T, cfg_.pad_id);
    std::fill(vrow, vrow + T, uint8_t(0));
    row[0] = cfg_.cls_id;
    for (int64_t j = 0; j < m; ++j) mem_rows[size_t(b * m + j)] = b * T + 1 + j;  // placeholders keep [PAD]'s id
    row[m + 1] = cfg_.sep_id;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t id = text[b * L + i];
      if (id < 0 || id >= V) throw Error(cat("RMT: token id ", id, " outside the vocabulary [0, ", V, ")"));
      row[m + 2 + i] = id;
    }
    row[m + 2 + n] = cfg_.sep_id;
    std::fill(vrow, vrow + m + 3 + n, uint8_t(1));
  }
  SegmentOut out;
  // The memory replaces the placeholders' word embeddings (HF's inputs_embeds path).
  Var x = ag::scatter_rows(t, bert_->embed_words(t, ids, N), mem_rows, memory);  // (N,C)
  out.hidden = bert_->encode_embeds(t, x, nullptr, valid, B, T, observer);        // (B*T, C)
  out.memory = ag::select_rows(t, out.hidden, mem_rows);                           // (B*m, C)
  return out;
}

Var RmtEncoder::classify(Tape& t, const Var& hidden, int64_t B) {
  return bert_->classify(t, hidden, B, cfg_.seq_len());  // pooler on [CLS] (row b*T) + classifier
}

// ---- BPTT and streaming ----

namespace {

void score(const Var& logits, const std::vector<int32_t>& labels, int64_t B, int64_t K, RmtResult& r) {
  r.logits.assign(logits.data(), logits.data() + B * K);
  r.predictions.assign(size_t(B), 0);
  for (int64_t b = 0; b < B; ++b) {
    const float* row = logits.data() + b * K;
    r.predictions[size_t(b)] = int32_t(std::max_element(row, row + K) - row);
    if (labels[size_t(b)] >= 0) {
      ++r.counted;
      r.correct += r.predictions[size_t(b)] == labels[size_t(b)];
    }
  }
}

}  // namespace

RmtResult rmt_forward(RmtEncoder& model, Tape& tape, Tape& scratch, const RmtBatch& batch, int64_t bptt_depth) {
  const int64_t B = batch.B, S = batch.S, L = model.config().segment_tokens, m = model.config().num_mem_tokens;
  const int64_t C = model.d_model(), K = int64_t(model.config().labels.size());
  MNEMO_CHECK(S >= 1 && B >= 1, "rmt_forward: empty batch");
  MNEMO_CHECK(int64_t(batch.text.size()) == S * B * L && int64_t(batch.lengths.size()) == S * B &&
                  int64_t(batch.labels.size()) == B,
              "rmt_forward: batch arrays do not match B=", B, " S=", S, " L=", L);
  MNEMO_CHECK(!scratch.recording(), "rmt_forward: scratch must be an inference tape");
  for (int64_t b = 0; b < B; ++b)
    if (batch.labels[size_t(b)] >= K)
      throw Error(cat("RMT: label ", batch.labels[size_t(b)], " outside the head's ", K, " labels"));
  const bool train = tape.recording();
  // Segments before `first` run forward-only; with an inference tape, all of them do.
  const int64_t first = !train ? S : (bptt_depth > 0 ? std::max<int64_t>(0, S - bptt_depth) : 0);
  Tensor mem = Tensor::zeros({B * m, C});  // (B*m, C) memory handed between forward-only segments
  Tensor start;                            // (B*m, C) batch.start_memory, when given
  if (!batch.start_memory.empty()) {
    MNEMO_CHECK(int64_t(batch.start_memory.size()) == B * m * C, "rmt_forward: start memory of ",
                batch.start_memory.size(), " values for B=", B, " m=", m, " C=", C);
    start = Tensor::zeros({B * m, C});
    std::copy(batch.start_memory.begin(), batch.start_memory.end(), start.data());
  }
  auto first_memory = [&](Tape& t) { return start.numel() ? constant_input(start) : model.initial_memory(t, B); };
  auto seg_text = [&](int64_t s) { return batch.text.data() + s * B * L; };
  auto seg_len = [&](int64_t s) { return batch.lengths.data() + s * B; };
  RmtResult r;
  Tape& fwd = train ? scratch : tape;
  for (int64_t s = 0; s < first; ++s) {
    fwd.reset();
    Var in = s == 0 ? first_memory(fwd) : constant_input(mem);
    auto out = model.segment(fwd, seg_text(s), seg_len(s), B, in);
    if (s + 1 == S) {  // the last segment (inference): answer
      Var logits = model.classify(fwd, out.hidden, B);  // (B,K)
      auto* targets = static_cast<int32_t*>(fwd.alloc_bytes(size_t(B) * sizeof(int32_t)));
      std::copy(batch.labels.begin(), batch.labels.end(), targets);
      r.loss = ag::cross_entropy(fwd, logits, targets).data()[0];
      score(logits, batch.labels, B, K, r);
    }
    std::memcpy(mem.data(), out.memory.data(), size_t(B * m * C) * sizeof(float));
    if (s + 1 == S) r.memory_norm = mean_row_norm(mem.data(), B * m, C);
  }
  if (!train) {
    r.memory.assign(mem.data(), mem.data() + B * m * C);
    fwd.reset();
    return r;
  }
  tape.reset();
  Var memory = first == 0 ? first_memory(tape) : constant_input(mem);
  Var hidden;
  for (int64_t s = first; s < S; ++s) {
    auto out = model.segment(tape, seg_text(s), seg_len(s), B, memory);
    memory = out.memory;
    hidden = out.hidden;
  }
  Var logits = model.classify(tape, hidden, B);  // (B,K)
  auto* targets = static_cast<int32_t*>(tape.alloc_bytes(size_t(B) * sizeof(int32_t)));
  std::copy(batch.labels.begin(), batch.labels.end(), targets);
  Var loss = ag::cross_entropy(tape, logits, targets);
  r.loss = loss.data()[0];
  score(logits, batch.labels, B, K, r);
  r.memory_norm = mean_row_norm(memory.data(), B * m, C);
  r.memory.assign(memory.data(), memory.data() + B * m * C);
  if (loss.needs_grad() && r.counted) tape.backward(loss);
  return r;
}

RmtStreamer::RmtStreamer(RmtEncoder& model, Tape& tape, int64_t B, const LayerObserver* observer)
    : model_(model), tape_(tape), B_(B), observer_(observer) {
  MNEMO_CHECK(!tape.recording(), "RmtStreamer needs an inference tape");
  mem_ = Tensor::zeros({B * model.config().num_mem_tokens, model.d_model()});
}

void RmtStreamer::step(const int32_t* text, const int32_t* lengths) {
  tape_.reset();
  Var in = segments_ == 0 ? model_.initial_memory(tape_, B_) : constant_input(mem_);
  auto out = model_.segment(tape_, text, lengths, B_, in, observer_);
  std::memcpy(mem_.data(), out.memory.data(), size_t(mem_.numel()) * sizeof(float));
  hidden_ = out.hidden;
  ++segments_;
}

std::vector<float> RmtStreamer::classify() {
  MNEMO_CHECK(segments_ > 0, "RmtStreamer::classify before any segment");
  Var lg = model_.classify(tape_, hidden_, B_);  // (B,K)
  return std::vector<float>(lg.data(), lg.data() + lg.value.numel());
}

std::vector<float> RmtStreamer::probe(const int32_t* text, const int32_t* lengths) {
  MNEMO_CHECK(segments_ > 0, "RmtStreamer::probe before any segment");
  const Tensor kept = mem_.clone();
  step(text, lengths);
  std::vector<float> logits = classify();
  std::memcpy(mem_.data(), kept.data(), size_t(mem_.numel()) * sizeof(float));
  --segments_;
  return logits;
}

double RmtStreamer::memory_norm() const { return mean_row_norm(mem_.data(), mem_.dim(0), mem_.dim(1)); }

}  // namespace mnemo

#pragma once
// The Recurrent Memory Transformer, encoder variant (Bulatov et al. 2022, arXiv 2207.06881; 2304.11062), wrapping
// an unchanged BERT backbone (model/bert.h).
//
// A long input is cut into segments of L text tokens. Segment tau is fed to the backbone as
//     [CLS] mem_1 .. mem_m [SEP] text (<= L tokens) [SEP] [PAD]...          T = L + m + 3 positions
// where the memory rows replace the word embeddings at positions 1..m (position and token-type embeddings and
// the embedding LayerNorm still apply, as in the reference implementation that passes inputs_embeds). The last
// layer's outputs at positions 1..m are the memory of segment tau+1. Segment 0 reads the trainable initial memory
// "rmt.memory" (m, C). The answer is read from the last segment: BERT's pooler + a classifier on its [CLS].
//
// Gradients flow through the memory from segment to segment (backpropagation through time). rmt_forward() runs a
// batch of segments; with bptt_depth k > 0 only the last k segments are on the autograd tape and the earlier ones
// run forward-only on a scratch tape, so training memory grows with k, not with the number of segments.
// rmt_stream() is inference over a source of segments: it holds one segment's activations and the memory.
//
// Saved as a Hugging Face BertForSequenceClassification directory plus one extra tensor and one config key:
//   model.safetensors  "bert.*", "classifier.weight" (labels, C), "classifier.bias", and "rmt.memory" (m, C)
//   config.json        BertConfig keys + "rmt": {"num_mem_tokens", "segment_tokens", "cls_id", "sep_id",
//                      "pad_id", "labels": [names]} (transformers ignores the extra key and tensor).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/parameter.h"
#include "autograd/tape.h"
#include "base/json.h"
#include "model/attention.h"
#include "model/bert.h"

namespace mnemo {

struct RmtConfig {
  int64_t num_mem_tokens = 10;  // m
  int64_t segment_tokens = 64;  // L: text tokens per segment
  int32_t cls_id = 101, sep_id = 102, pad_id = 0;  // BERT uncased vocabulary
  std::vector<std::string> labels;  // names of the classifier's outputs, in order

  int64_t seq_len() const { return segment_tokens + num_mem_tokens + 3; }
  Json to_json() const;
  // `source` names the file in errors ("DIR/config.json: rmt.num_mem_tokens must be positive").
  static RmtConfig from_json(const Json& j, const std::string& source);
  void validate(const BertConfig& backbone, const std::string& source) const;
};

class RmtEncoder {
 public:
  // backbone.head must be SequenceClassification with num_labels == rmt.labels.size().
  RmtEncoder(const BertConfig& backbone, const RmtConfig& rmt);

  Bert& backbone() { return *bert_; }
  const Bert& backbone() const { return *bert_; }
  const RmtConfig& config() const { return cfg_; }
  // The memory's own parameters: "rmt.memory" (m, C).
  ParameterSet& memory_params() { return mem_params_; }
  const ParameterSet& memory_params() const { return mem_params_; }
  int64_t d_model() const { return bert_->config().hidden_size; }
  // Initial memory N(0, std of the word embeddings), as the reference implementation does.
  void init_memory(uint64_t seed);

  // The initial memory repeated over the batch -> (B*m, C).
  Var initial_memory(Tape& t, int64_t B);

  struct SegmentOut {
    Var hidden;  // (B*T, C) last hidden states
    Var memory;  // (B*m, C) written memory (rows 1..m of each sequence)
  };
  // One segment: text (B, L) row-major, lengths (B) real tokens per row (<= L; the rest of the row is ignored);
  // memory (B*m, C). observer (may be null) sees every layer's attention probabilities (B,H,T,T).
  SegmentOut segment(Tape& t, const int32_t* text, const int32_t* lengths, int64_t B, const Var& memory,
                     const LayerObserver* observer = nullptr);
  // Logits (B, labels) from [CLS] of a segment's hidden states.
  Var classify(Tape& t, const Var& hidden, int64_t B);

 private:

  RmtConfig cfg_;
  std::unique_ptr<Bert> bert_;
  ParameterSet mem_params_;
  int64_t word_;  // the backbone's word embeddings (their std initialises the memory)
};

// A batch of S segments of B samples: the whole long input, for training and short evaluations.
struct RmtBatch {
  int64_t B = 0, S = 0;
  std::vector<int32_t> text;     // (S, B, L)
  std::vector<int32_t> lengths;  // (S, B)
  std::vector<int32_t> labels;   // (B), -1 = no label (ignored by the loss)
  // The memory segment 0 reads, (B*m, C), a constant: empty = the trainable initial memory. Training can start a
  // batch from memories that have read a long input, so that the memory learns to hold a fact from the states a
  // long input leads to, not only from the initial one (train/rmt_trainer.h, warm_memory).
  std::vector<float> start_memory;
};

struct RmtResult {
  double loss = 0;                   // mean cross-entropy over labelled rows
  int64_t correct = 0, counted = 0;  // argmax == label over labelled rows
  std::vector<int32_t> predictions;  // (B)
  std::vector<float> logits;         // (B, labels)
  double memory_norm = 0;            // mean L2 norm of the final memory rows (drift shows here first)
  std::vector<float> memory;         // (B*m, C) the final memory
};

// Forward over all S segments and, when `tape` records, backward from the loss into the parameters' gradients
// (accumulated; the caller zeroes them). bptt_depth k > 0: gradients flow through the last k segments only (the
// earlier ones run on `scratch`, an inference tape, and hand their memory over as a constant); 0 = all segments.
// On an inference `tape` every segment runs forward-only and the arena is rewound after each one.
RmtResult rmt_forward(RmtEncoder& model, Tape& tape, Tape& scratch, const RmtBatch& batch, int64_t bptt_depth);

// Streaming inference, one segment at a time: holds one segment's activations (in `tape`, an inference tape) and
// the memory (B*m, C), whatever the number of segments.
class RmtStreamer {
 public:
  // observer (may be null) sees every layer's attention probabilities of every segment.
  RmtStreamer(RmtEncoder& model, Tape& tape, int64_t B, const LayerObserver* observer = nullptr);
  // Run the next segment: text (B, L), lengths (B). Its activations stay valid until the next call.
  void step(const int32_t* text, const int32_t* lengths);
  // Logits (B, labels) from [CLS] of the segment run last.
  std::vector<float> classify();
  // Logits of a segment run on the current memory, which stays as it was: the answer the model would give if the
  // input ended with this segment (eval rmt --probe-every). classify() then refers to it until the next step.
  std::vector<float> probe(const int32_t* text, const int32_t* lengths);
  int64_t segments() const { return segments_; }
  const Tensor& memory() const { return mem_; }  // (B*m, C) after the last segment
  double memory_norm() const;                    // mean L2 norm of its rows

 private:
  RmtEncoder& model_;
  Tape& tape_;
  int64_t B_;
  const LayerObserver* observer_;
  Tensor mem_;   // (B*m, C)
  Var hidden_;   // (B*T, C) of the last segment (in the tape's arena)
  int64_t segments_ = 0;
};

}  // namespace mnemo

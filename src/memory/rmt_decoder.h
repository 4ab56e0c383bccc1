#pragma once
// The Recurrent Memory Transformer, decoder variant (Bulatov et al. 2022, arXiv 2207.06881), wrapping an unchanged
// Llama decoder (model/llama.h, HF LlamaForCausalLM) on the autograd tape.
//
// A long input is cut into segments of L text tokens. Every segment but the last is fed as
//     [read mem_1 .. mem_m] text (<= L tokens) [PAD]... [write mem_1 .. mem_m]          T = m + L + m positions
// (after one sink token, [BOS], when sink_id >= 0) where the memory rows replace the token embeddings at the read AND the write positions (both carry the incoming
// memory, as the reference implementation concatenates [memory, text, memory] as inputs_embeds). Attention is
// causal, so the write rows see the read memory and the whole text; the padding keys of a short row are masked
// (HF's attention_mask). Positions restart at 0 every segment (rotary over 0..T-1, what HF does on each call).
// The last hidden states at the write positions, taken AFTER the final RMSNorm (HF's hidden_states[-1], which the
// reference takes; the norm bounds every memory row, so the memory cannot grow from segment to segment), are the
// next segment's read memory. Segment 0 reads the trainable "rmt.memory" (m, C), N(0, std of the embeddings).
//
// The last segment holds the end of the input with the question at its end and has no write memory (nothing
// would read it; with causal attention it would not change the text's outputs either):
//     [read mem_1 .. mem_m] text (<= L tokens) answer tokens...
// Training: the LM loss (mean cross-entropy over the batch's answer tokens) falls on the answer — the answer's
// tokens then EOS, teacher-forced, position m+n-1+k predicting answer token k. Inference: greedy decoding after
// the question with the memory in place, one token at a time until EOS or max_answer_tokens (each new token
// re-runs the short last segment: there is no KV cache on the tape).
//
// rmt_decoder_forward() runs a batch of segments (BPTT through the memory; bptt_depth k > 0 keeps only the last
// k segments on the tape). RmtDecoderStreamer is inference over a source of segments: it holds one segment's
// activations and the memory, whatever the number of segments.
//
// Saved (memory/rmt_dir.h) as a Hugging Face LlamaForCausalLM directory plus one tensor and one config key:
//   model.safetensors  "model.*", "lm_head.weight" (untied models only), and "rmt.memory" (m, C)
//   config.json        LlamaConfig keys + "rmt": {"variant": "decoder", "num_mem_tokens", "segment_tokens",
//                      "max_answer_tokens", "eos_id", "pad_id", "sink_id"} (transformers ignores the extra key and tensor).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/parameter.h"
#include "autograd/tape.h"
#include "base/json.h"
#include "model/llama.h"

namespace mnemo {

struct RmtDecoderConfig {
  int64_t num_mem_tokens = 10;    // m
  int64_t segment_tokens = 64;    // L: text tokens per segment
  int64_t max_answer_tokens = 4;  // greedy decoding stops here if no EOS came
  int32_t eos_id = 2;             // ends an answer (the backbone's eos_token_id)
  int32_t pad_id = 0;             // fills placeholders and padding (never attended to)
  // >= 0: this token (the backbone's BOS) opens every segment, before the read memory, so the model keeps the
  // attention sink it learned on its first position and the memory rows are ordinary positions; -1: none.
  int32_t sink_id = -1;

  int64_t prefix() const { return sink_id >= 0 ? 1 : 0; }  // positions before the read memory
  int64_t write_len() const { return prefix() + 2 * num_mem_tokens + segment_tokens; }  // T of a memory segment
  Json to_json() const;  // with "variant": "decoder"
  // num_mem_tokens and segment_tokens are required; `source` names the file in errors.
  static RmtDecoderConfig from_json(const Json& j, const std::string& source);
  void validate(const LlamaConfig& backbone, const std::string& source) const;
};

class RmtDecoder {
 public:
  RmtDecoder(const LlamaConfig& backbone, const RmtDecoderConfig& rmt);

  Llama& backbone() { return *llama_; }
  const Llama& backbone() const { return *llama_; }
  const RmtDecoderConfig& config() const { return cfg_; }
  // The memory's own parameters: "rmt.memory" (m, C).
  ParameterSet& memory_params() { return mem_params_; }
  const ParameterSet& memory_params() const { return mem_params_; }
  int64_t d_model() const { return llama_->config().hidden_size; }
  // The token embedding table "model.embed_tokens.weight" (V, C) (also the LM head when tied).
  Parameter& embeddings();
  // Initial memory N(0, std of the token embeddings), as the reference implementation does.
  void init_memory(uint64_t seed);

  // The initial memory repeated over the batch -> (B*m, C).
  Var initial_memory(Tape& t, int64_t B);
  // A memory segment: text (B, L) row-major, lengths (B) real tokens per row (0..L; the rest of a row is
  // ignored), memory (B*m, C) -> the written memory (B*m, C).
  Var write(Tape& t, const int32_t* text, const int32_t* lengths, int64_t B, const Var& memory);
  // The last segment: tokens (B, W) row-major, lengths (B) real tokens per row (1..W), after the read memory
  // (B*m, C) -> last hidden states after the final norm (B*(prefix+m+W), C). Tokens after a row's length are ignored.
  Var read(Tape& t, const int32_t* tokens, const int32_t* lengths, int64_t B, int64_t W, const Var& memory);

 private:
  RmtDecoderConfig cfg_;
  std::unique_ptr<Llama> llama_;
  ParameterSet mem_params_;
};

// A batch of S segments of B samples for training and short evaluations: S-1 memory segments and the last one.
struct RmtDecoderBatch {
  int64_t B = 0, S = 0, A = 0;
  std::vector<int32_t> text;     // (S, B, L)
  std::vector<int32_t> lengths;  // (S, B); the last segment's rows must be non-empty
  std::vector<int32_t> answers;  // (B, A): each row's answer tokens, EOS last, then -1
};

struct RmtDecoderResult {
  double loss = 0;                   // mean cross-entropy over the batch's answer tokens
  int64_t correct = 0, counted = 0;  // rows whose every answer token is the argmax (= greedy decoding gives
                                     // exactly the answer and EOS)
  std::vector<float> logits;         // (B, A, V) at the answer positions; rows past an answer's end are 0
  double memory_norm = 0;            // mean L2 norm of the memory rows the last segment read
};

// The loss graph (1) over all S segments on `tape`, without running backward (gradient checks; what
// rmt_decoder_forward differentiates at full depth). r (may be null) gets what rmt_decoder_forward reports.
Var rmt_decoder_loss(RmtDecoder& model, Tape& tape, const RmtDecoderBatch& batch, RmtDecoderResult* r = nullptr);

// Forward over all S segments and, when `tape` records, backward from the loss into the parameters' gradients
// (accumulated; the caller zeroes them). bptt_depth k > 0: gradients flow through the last k segments only (the
// earlier ones run on `scratch`, an inference tape, and hand their memory over as a constant); 0 = all segments.
// On an inference `tape` every segment runs forward-only and the arena is rewound after each one.
RmtDecoderResult rmt_decoder_forward(RmtDecoder& model, Tape& tape, Tape& scratch, const RmtDecoderBatch& batch,
                                     int64_t bptt_depth);

// Streaming inference, one segment at a time: holds one segment's activations (in `tape`, an inference tape) and
// the memory (B*m, C), whatever the number of segments.
class RmtDecoderStreamer {
 public:
  RmtDecoderStreamer(RmtDecoder& model, Tape& tape, int64_t B);
  // Run the next memory segment: text (B, L), lengths (B).
  void step(const int32_t* text, const int32_t* lengths);
  // Next-token logits (B, V) after the last segment's tokens (B, W), lengths (B) in 1..W, with the memory in place.
  std::vector<float> next_logits(const int32_t* tokens, const int32_t* lengths, int64_t W);
  // Greedy answer after the last segment's text (B, L), lengths (B) in 1..L (the question at its end): per row
  // the generated tokens, at most max_answer_tokens, EOS not included.
  std::vector<std::vector<int32_t>> answer(const int32_t* text, const int32_t* lengths);
  int64_t segments() const { return segments_; }
  const Tensor& memory() const { return mem_; }  // (B*m, C) after the last memory segment
  double memory_norm() const;                    // mean L2 norm of its rows

 private:
  Var memory_in();
  RmtDecoder& model_;
  Tape& tape_;
  int64_t B_;
  Tensor mem_;  // (B*m, C)
  int64_t segments_ = 0;
};

}  // namespace mnemo

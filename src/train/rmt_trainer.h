#pragma once
// Training the RMT (encoder or decoder variant) on a long-context task (memorize, detect, reasoning, qa1..qa4) with
// the curriculum (train/curriculum.h), backpropagation through time over all segments or the last k, AdamW,
// clipping, and a checkpoint that resumes bit for bit.
//
// Samples are made on the fly by the task builders (tasks/long_context.h) from the corpus' train split, each
// exactly S * L tokens of input + " " + question, so the question ends the last segment; validation samples come
// from the validation split with a fixed seed per segment count.
//
// A run directory OUT holds:
//   OUT/checkpoint/     the latest training checkpoint (io/checkpoint.h: weights, AdamW moments, RNG, step, state,
//                       and with warm_memory the chain of memories that read background text)
//   OUT/stage-NN/       the RMT model directory (memory/rmt_dir.h) when the stage with NN segments ended
//   OUT/final/          the model at the end of the run (after the mixed phase)
//   OUT/log.jsonl       one line per evaluation: step, segments, phase, train loss/accuracy, validation accuracy,
//                       memory norm, learning rate, seconds
// Resuming (resume = true) reads OUT/checkpoint and continues with the configuration saved there (max_total_steps
// and the thread count may differ); the losses are those of a run that was never stopped.
#include <cstdint>
#include <functional>
#include <string>

#include "base/json.h"
#include "memory/rmt.h"
#include "train/curriculum.h"

namespace mnemo {

struct RmtTrainConfig {
  // "encoder" (memory/rmt.h, a 6-way head on [CLS]) or "decoder" (memory/rmt_decoder.h, the LM loss on the answer
  // word and EOS; validation accuracy = every answer token is the argmax, i.e. greedy decoding gives the answer).
  std::string variant = "encoder";
  // Pretrained model: a BERT directory (encoder); a GGUF Llama file or an HF Llama directory (decoder). Its
  // tokenizer is used unless `tokenizer` is set.
  std::string init;
  std::string tokenizer;  // tokenizer path (a model directory, vocab.txt, tokenizer.json or GGUF); "" = init
  std::string corpus_dir = "data/corpus";
  std::string task = "memorize";
  int64_t facts_min = 0, facts_max = 0;  // story sentences of qa1..qa3 (0 = the task's default range)
  int64_t num_mem_tokens = 10, segment_tokens = 64;
  bool sink_token = false;  // decoder: open every segment with the backbone's BOS (memory/rmt_decoder.h sink_id)
  int64_t batch = 32, bptt_depth = 0;
  // Places named in the background of training and validation samples (tasks::DistractorBackground's rate per
  // sentence): teaches the memory not to take a mere mention for a fact. 0 = the corpus as it is.
  double distractors = 0;
  // Encoder: memory states of long inputs in training. Beside the samples runs a chain of memories that read
  // only background text, `warm_segments` more segments of it each step (forward only, from the initial memory
  // at the first step, so after n steps it has read n * warm_segments segments). With probability `warm_memory`
  // a step's batch starts from the chain's memories (in a random order, as constants) instead of the initial
  // memory: the fact is then written into, and held by, a memory that has read a long input, as at inference.
  // Each sample is still <= max_segments segments and gradients stay within it. 0 = never.
  double warm_memory = 0;
  int64_t warm_segments = 4;
  // Each step, each chain row starts over from the initial memory with this probability, so the chain holds
  // memories of every age (geometric, mean warm_segments / warm_reset segments) instead of one age that grows
  // with the step. 0 = never.
  double warm_reset = 0;
  double lr = 1e-4, clip = 1.0;
  int64_t warmup = 50;
  bool freeze_embeddings = true;  // word embeddings stay pretrained (and out of the stored delta)
  int64_t eval_every = 25, val_count = 64, val_batch = 32;
  uint64_t seed = 1;
  CurriculumConfig curriculum;

  Json to_json() const;
  static RmtTrainConfig from_json(const Json& j, const std::string& source);
};

struct RmtTrainLimits {
  int64_t max_total_steps = 0;  // stop (with a checkpoint) after this many optimizer steps in total; 0 = no limit
  // On resume: curriculum keys (CurriculumConfig::to_json names) that replace the stored ones, e.g.
  // {"max_segments": 9, "mixed_steps": 200}; empty = keep the stored rules.
  Json curriculum_overrides = Json::object();
};

struct RmtTrainSummary {
  int64_t steps = 0;
  bool finished = false;  // the curriculum (and the mixed phase) ran to the end
  Json curriculum;
  std::vector<double> losses;  // training loss of every step taken in this call (for resume tests)
};

// Start a run in `out` (Error if out/checkpoint exists) or resume it.
RmtTrainSummary train_rmt(const RmtTrainConfig& cfg, const std::string& out, bool resume,
                          const RmtTrainLimits& limits);
// Resume with the configuration stored in out/checkpoint.
RmtTrainSummary resume_rmt(const std::string& out, const RmtTrainLimits& limits);

}  // namespace mnemo

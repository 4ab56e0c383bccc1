#pragma once
// Fine-tuning a Llama decoder on question-answering task files (passkey, qa1..qa4: tasks/task_file.h) so that its
// greedy reply to the prompt `mnemo eval qa` asks (tasks/qa_prompt.h) is the target. Every token of the prompt is
// seen; the loss (cross-entropy) falls on the reply's tokens only — the target and its stop token, teacher-forced —
// averaged per record, then over the batch. AdamW (no weight decay) with warm-up and linear decay, global-norm
// clipping; the word embeddings (and so a tied LM head) stay pretrained unless asked otherwise.
//
// A batch of `batch` records is drawn at random from the training file and run `micro_batch` records at a time
// (gradients accumulate, so long prompts fit in memory); a micro-batch is right-padded to its longest record
// (causal attention: the padding is never attended to by a real token). Validation on a fixed set of records:
// the reply loss, and the accuracy = every reply token is the argmax given the ones before it (= greedy decoding
// produces the target and stops).
//
// A run directory OUT holds:
//   OUT/checkpoint/   the latest training checkpoint (weights, AdamW moments, RNG, step, config)
//   OUT/final/        the fine-tuned model: an HF Llama directory with the tokenizer files (eval qa reads it)
//   OUT/log.jsonl     one line per evaluation (step 0 = before any update)
// A resumed run continues with the configuration saved in its checkpoint and gives the losses of a run that was
// never stopped.
#include <cstdint>
#include <string>
#include <vector>

#include "base/json.h"

namespace mnemo {

struct QaTrainConfig {
  std::string init;       // the pretrained decoder: a GGUF file or an HF Llama directory
  std::string tokenizer;  // "" = the init's
  std::string data;       // training task file (JSONL)
  std::string val;        // validation task file ("" = the first val_count training records, said in the log)
  std::string templ = "chatml";  // tasks/qa_prompt.h
  int64_t steps = 200, batch = 8, micro_batch = 1;
  double lr = 2e-5, final_lr_fraction = 0.1, clip = 1.0;
  int64_t warmup = 20;
  bool freeze_embeddings = true;
  int64_t eval_every = 25, val_count = 32;
  uint64_t seed = 1;

  Json to_json() const;
  static QaTrainConfig from_json(const Json& j, const std::string& source);
};

struct QaTrainSummary {
  int64_t steps = 0;         // optimizer steps taken in total
  bool finished = false;     // reached config.steps (OUT/final written)
  std::vector<double> losses;  // training loss of every step taken in this call
  double val_loss = 0, val_accuracy = 0;  // at the last evaluation
};

// Start a run in `out` (Error if out/checkpoint exists) or resume it (resume = true: cfg is ignored, the stored
// configuration is used). stop_at > 0 checkpoints and returns after that many steps in total.
QaTrainSummary train_qa(const QaTrainConfig& cfg, const std::string& out, bool resume, int64_t stop_at = 0);

}  // namespace mnemo

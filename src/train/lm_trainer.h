#pragma once
// Language-model training on a stream of token ids: causal LM for GPT-2, masked LM for BERT. Batches are random
// windows drawn with the trainer's Rng; AdamW with warm-up + linear decay and global-norm clipping; periodic
// validation loss on fixed windows; checkpoints (weights, optimizer moments, RNG, step) so a stopped run resumed
// from its last checkpoint gives exactly the losses of a run that never stopped.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/model_dir.h"
#include "tensor/kernels.h"

namespace mnemo {

enum class LmObjective { Causal, Masked };

struct LmTrainConfig {
  LmObjective objective = LmObjective::Causal;
  int64_t steps = 1000, batch = 8, seq = 128;
  double lr = 3e-4, final_lr_fraction = 0.1;
  int64_t warmup = 100;
  AdamWConfig adamw{3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f};
  double clip = 1.0;
  int64_t eval_every = 100, eval_batches = 8;
  int64_t save_every = 0;  // 0: only at the end
  int64_t stop_at = 0;     // > 0: checkpoint and return after this step (a run split over sessions); 0: run to `steps`
  uint64_t seed = 0;
  // Masked LM: BERT's recipe — 15 % of positions are predicted; of those 80 % become [MASK], 10 % a random id,
  // 10 % stay.
  int32_t mask_id = -1;
  double mask_prob = 0.15;
  std::string checkpoint;  // where checkpoints go (a directory); empty: none
};

struct LmTrainLog {
  std::vector<std::pair<int64_t, double>> train_loss;  // (step, loss) every step
  std::vector<std::pair<int64_t, double>> val_loss;    // (step, loss) at each evaluation
  double tokens_per_second = 0;
  int64_t start_step = 0;  // > 0 when resumed
};

// Trains `model` in place. When `resume` is true the checkpoint at config.checkpoint must exist and is continued
// from (its weights replace the model's). Throws Error for data too short for one window, a bad mask id, or a
// checkpoint that does not fit the model.
LmTrainLog train_lm(LoadedModel& model, const std::vector<int32_t>& train_ids, const std::vector<int32_t>& val_ids,
                    const LmTrainConfig& config, bool resume);

// Mean validation loss over `batches` fixed windows (the same windows every call).
double lm_validation_loss(LoadedModel& model, const std::vector<int32_t>& ids, const LmTrainConfig& config);

}  // namespace mnemo

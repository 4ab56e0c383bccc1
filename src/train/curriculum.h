#pragma once
// The RMT curriculum (Bulatov et al. 2023): train on 1 segment, add a segment each time validation accuracy has
// converged, up to a maximum; then a final phase in which every batch has a random number of segments, which
// ../shared/RMT-NOTES.md found to matter for holding the answer over far more segments than trained.
//
// CONVERGED means: validation accuracy >= `threshold` at `confirm` consecutive evaluations, and the stage has run
// at least `min_steps` steps (a quick 95 % after a few steps learned the task at this length but not a memory
// that lasts — the notes' first recipe). A stage that does not converge within `max_steps` advances anyway and is
// recorded as not converged, so a run always ends.
//
// The state is plain data (to_json / from_json) so a checkpoint resumes the curriculum exactly.
#include <cstdint>
#include <vector>

#include "base/json.h"
#include "base/rng.h"

namespace mnemo {

struct CurriculumConfig {
  int64_t start_segments = 1, max_segments = 7;
  double threshold = 0.99;
  int64_t confirm = 2;
  int64_t min_steps = 100;
  int64_t max_steps = 800;
  int64_t mixed_steps = 300;  // 0: no mixed phase
  int64_t mixed_min = 1;      // mixed batches draw their segment count from [mixed_min, max_segments]

  Json to_json() const;
  static CurriculumConfig from_json(const Json& j, const std::string& source);
  void validate() const;  // Error naming the flag at fault
};

class Curriculum {
 public:
  enum class Phase { Stages, Mixed, Done };
  enum class Event { None, Advanced, EnteredMixed, Done };
  struct StageRecord {
    int64_t segments = 0, steps = 0;
    double last_accuracy = 0;
    bool converged = false;
  };

  explicit Curriculum(CurriculumConfig cfg);

  Phase phase() const { return phase_; }
  int64_t segments() const { return segments_; }  // the current stage (in the mixed phase: the maximum)
  int64_t steps_in_phase() const { return steps_; }
  const CurriculumConfig& config() const { return cfg_; }
  const std::vector<StageRecord>& history() const { return history_; }

  // Segment count for the next training batch (draws from rng only in the mixed phase).
  int64_t batch_segments(Rng& rng) const;
  // One training step was taken; in the mixed phase this may end the run (returns Done).
  Event on_step();
  // A validation accuracy at segments(); may advance the stage.
  Event on_eval(double accuracy);

  Json to_json() const;
  static Curriculum from_json(const Json& j, const std::string& source);
  // Change the rules mid-run (a resumed run with new limits); the stage, step count and history stay. A finished
  // run given a longer mixed phase (or one where it had none) goes back to it for the remaining steps.
  void set_config(const CurriculumConfig& cfg);

 private:
  Event advance(bool converged);
  CurriculumConfig cfg_;
  Phase phase_ = Phase::Stages;
  int64_t segments_ = 1, steps_ = 0, ok_ = 0;
  double last_acc_ = 0;
  std::vector<StageRecord> history_;
};

const char* phase_name(Curriculum::Phase p);

}  // namespace mnemo

#pragma once
// Training checkpoints for resume: named weights, named optimizer state, the RNG state, the step and a JSON blob
// of whatever else the trainer needs (config, schedule position, curriculum stage, best score...). The format is
// generic — named fp32 tensors + JSON — and the trainer decides what goes in.
//
// Two layouts, chosen by the path:
//  - a directory (any path not ending in ".safetensors"):
//      DIR/model.safetensors      the weights under their own names (so DIR + a config.json is a model directory)
//      DIR/optimizer.safetensors  the optimizer tensors
//      DIR/trainer_state.json     {"format": "mnemo-checkpoint", "version": 1, "step": N, "rng": [6 hex words],
//                                  "state": {...}}
//      plus any extra text files the caller passes (config.json, tokenizer files...).
//    The directory is written complete under DIR.tmp.XXXX and swapped into place with one atomic rename
//    (renameat2 RENAME_EXCHANGE when DIR already exists), so a reader sees the old checkpoint or the new one,
//    never a mixture; a crash leaves at most a stale DIR.tmp.XXXX beside it.
//  - one file "X.safetensors": weights as "model/NAME", optimizer tensors as "optimizer/NAME", and the
//    trainer_state JSON above in the __metadata__ key "mnemo.trainer_state"; written with atomic_write.
//
// Loading validates everything: the format tag and version, the step, the RNG words, every tensor (by the
// safetensors reader) and that every value is finite; problems are one-line Errors naming the path and the field.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/json.h"
#include "tensor/tensor.h"

namespace mnemo {

struct Checkpoint {
  std::vector<std::pair<std::string, Tensor>> weights;    // named parameters, any shapes
  std::vector<std::pair<std::string, Tensor>> optimizer;  // named optimizer tensors (e.g. "m.NAME", "v.NAME")
  std::array<uint64_t, 6> rng{};                          // Rng::state()
  int64_t step = 0;                                       // optimizer steps taken
  Json state = Json::object();                            // trainer config and progress
  std::map<std::string, std::string> extra_files;         // directory layout only: file name -> contents

  // Lookup helpers; throw Error naming the checkpoint `source` and the tensor when absent or of another shape.
  const Tensor& weight(const std::string& name, const Shape& shape) const;
  const Tensor& optimizer_tensor(const std::string& name, const Shape& shape) const;
  std::string source;  // the path it was loaded from (for error messages)
};

// Writes atomically (see the top of this file). Tensor names must be unique within weights and within optimizer.
void save_checkpoint(const std::string& path, const Checkpoint& ck);
// Loads and validates; tensors come back in fresh, writable storage.
Checkpoint load_checkpoint(const std::string& path);
// True when PATH holds a checkpoint (a directory with trainer_state.json, or a .safetensors file whose metadata
// has the trainer state) — lets a trainer decide between "resume" and "start".
bool is_checkpoint(const std::string& path);

}  // namespace mnemo

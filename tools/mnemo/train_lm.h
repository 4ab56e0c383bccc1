#pragma once
// `mnemo train lm`: the causal-LM / masked-LM trainer behind the `train` verb (verb_train.cpp dispatches here for
// everything that is not `rmt`).
#include "cli.h"

namespace mnemo::cli {
int run_train_lm(Args& args);
extern const char kTrainLmUsage[];  // its usage text, registered by verb_train.cpp for `train` and `train lm`
}

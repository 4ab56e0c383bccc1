#pragma once
// The one autograd op the Recurrent Memory Transformer needs beyond autograd/ops.h: writing the memory vectors
// into the rows of a segment's embeddings where the memory placeholders sit (HF's inputs_embeds with the memory
// positions replaced, as the RMT reference implementation does). A plain loop; it is its own reference.
// Also the small pieces both RMT variants (memory/rmt.h, memory/rmt_decoder.h) share.
#include <cstdint>
#include <vector>

#include "autograd/parameter.h"
#include "autograd/tape.h"

namespace mnemo::ag {

// out (N,C) = x (N,C) with row rows[r] replaced by src (R,C) row r. Rows must be distinct.
// Backward: dx gets dout except at the replaced rows; dsrc[r] gets dout[rows[r]].
Var scatter_rows(Tape& t, const Var& x, const std::vector<int64_t>& rows, const Var& src);

}  // namespace mnemo::ag

namespace mnemo {

// The reference implementation's initial memory: memory (m, C) ~ N(0, std of the token embeddings (V, C)).
void init_memory_from_embeddings(Tensor& memory, const Tensor& embeddings, uint64_t seed);
// Parameter i of ps, the memory (m, C), repeated over a batch -> (B*m, C); backward sums the batch's gradients.
Var repeat_memory(Tape& t, ParameterSet& ps, int64_t i, int64_t B);
// Mean L2 norm of the rows of x (rows, C): where a drifting memory shows first.
double mean_row_norm(const float* x, int64_t rows, int64_t C);
// A constant graph input (no gradient) over persistent storage: the memory handed over between tapes.
Var constant_input(const Tensor& t);

}  // namespace mnemo

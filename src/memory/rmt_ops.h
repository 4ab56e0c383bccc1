#pragma once
// The one autograd op the Recurrent Memory Transformer needs beyond autograd/ops.h: writing the memory vectors
// into the rows of a segment's embeddings where the memory placeholders sit (HF's inputs_embeds with the memory
// positions replaced, as the RMT reference implementation does). A plain loop; it is its own reference.
#include <cstdint>
#include <vector>

#include "autograd/tape.h"

namespace mnemo::ag {

// out (N,C) = x (N,C) with row rows[r] replaced by src (R,C) row r. Rows must be distinct.
// Backward: dx gets dout except at the replaced rows; dsrc[r] gets dout[rows[r]].
Var scatter_rows(Tape& t, const Var& x, const std::vector<int64_t>& rows, const Var& src);

}  // namespace mnemo::ag

#include "model/precision.h"

#include "autograd/ops.h"
#include "base/error.h"
#include "tensor/quant.h"

namespace mnemo {

Precision parse_precision(const std::string& name, const std::string& what) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw Error(cat(what, ": '", name, "' is not fp32 or bf16"));
}

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

void Linears::set(Precision p, const ParameterSet& ps, const std::vector<int64_t>& which) {
  precision_ = p;
  bf16_.clear();
  if (p == Precision::fp32) return;
  for (int64_t i : which) {
    const Tensor& w = ps[i].value;
    std::vector<uint16_t>& h = bf16_[i];
    h.resize(size_t(w.numel()));
    fp32_to_bf16_row(h.data(), w.data(), w.numel());
  }
}

Var Linears::operator()(Tape& t, const Var& x, ParameterSet& ps, int64_t w, int64_t b) const {
  const Var bias = b >= 0 ? ps.var(t, b) : Var{};
  auto it = bf16_.find(w);
  if (it == bf16_.end()) return ag::linear(t, x, ps.var(t, w), bias);
  MNEMO_CHECK(x.value.rank() && x.value.dim(-1) == ps[w].value.dim(1), "linear: x ", shape_str(x.shape()), " w ",
              shape_str(ps[w].value.shape()));
  return ag::linear_bf16(t, x, it->second.data(), ps[w].value.dim(0), bias);
}

}  // namespace mnemo

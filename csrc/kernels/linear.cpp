// pygen::linear on CPU: routes decoding-shaped float32 calls to the skinny kernel
// (linear_cpu.cpp), everything else to at::linear. No fake (Meta) impl or autograd formula:
// pygen.ops.linear calls F.linear itself under torch.compile and when a gradient is needed.
#include "linear.h"

#include <ATen/ATen.h>
#include <torch/library.h>

namespace pygen {

namespace {

bool skinny_applies(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  const auto f32_cpu = [](const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; };
  if (!f32_cpu(input) || !f32_cpu(weight) || weight.dim() != 2 || !weight.is_contiguous() || input.dim() < 1)
    return false;
  const int64_t out = weight.size(0), in = weight.size(1);
  if (in == 0 || out == 0 || input.size(-1) != in) return false;
  if (bias && (!f32_cpu(*bias) || bias->dim() != 1 || bias->size(0) != out || !bias->is_contiguous())) return false;
  const int64_t rows = input.numel() / in;
  return rows >= 1 && (rows <= kSkinnyMaxRows || (rows <= kSkinnyMaxRowsLargeWeight && weight.numel() >= kLargeWeight));
}

}  // namespace

at::Tensor linear(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  if (!skinny_applies(input, weight, bias)) return at::linear(input, weight, bias);
  const int64_t out = weight.size(0), in = weight.size(1);
  const at::Tensor x = input.reshape({-1, in}).contiguous();
  auto out_sizes = input.sizes().vec();
  out_sizes.back() = out;
  at::Tensor y = at::empty(out_sizes, input.options());
  skinny_linear_cpu_kernel({x.data_ptr<float>(), weight.data_ptr<float>(), bias ? bias->data_ptr<float>() : nullptr,
                            y.data_ptr<float>(), x.size(0), in, out});
  return y;
}

TORCH_LIBRARY_IMPL(pygen, CPU, m) { m.impl("linear", &linear); }

}  // namespace pygen

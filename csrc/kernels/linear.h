// Linear layers for decoding: y = x W^T + b when x has only a few rows (one token per beam), the
// shape of every decoder step. BLAS libraries tune for big GEMMs and run this memory-bound shape
// well below the memory bandwidth (MKL: 2-3x slower than streaming W once, measured in
// benchmarks/RESULTS.md); the skinny kernel streams each row of W once for all rows of x.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace pygen {

// Which products take the skinny kernel rather than at::linear (benchmarks/linear.py, AVX2):
// up to 16 rows always; up to 64 rows when W has at least 8M elements (an LM head: W streams
// from memory, where MKL's small-M GEMM is slowest); beyond, a GEMM's data reuse wins.
constexpr int64_t kSkinnyMaxRows = 16;
constexpr int64_t kSkinnyMaxRowsLargeWeight = 64;
constexpr int64_t kLargeWeight = int64_t(8) << 20;

// y[m, n] = x[m, :] . w[n, :] (+ bias[n]), all float32 row-major: x [rows, in], w [out, in],
// y [rows, out]. bias may be null.
struct SkinnyLinearParams {
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  int64_t rows, in, out;
};
void skinny_linear_cpu_kernel(const SkinnyLinearParams& p);

// at::linear's result (within float rounding) for every input, on any device; float32 CPU
// inputs with few rows (see above) run the skinny kernel. Each output element is then
// summed in one fixed order that depends on neither the number of rows nor the number of
// outputs, so fused and separate projections agree bit for bit. The CPU impl of pygen::linear,
// and what the C++ engine's layers call.
at::Tensor linear(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias);

}  // namespace pygen

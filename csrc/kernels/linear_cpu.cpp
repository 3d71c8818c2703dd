// Skinny linear on CPU: the body of linear_cpu_impl.h for the baseline ISA and, on x86-64, for
// AVX2+FMA (chosen at run time, see cpu_isa.h).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#include "cpu_isa.h"
#include "linear.h"

namespace pygen {

namespace cpu_base {
constexpr int kVecBytes = 16;
#include "linear_cpu_impl.h"
}  // namespace cpu_base

#if defined(__x86_64__)
PYGEN_BEGIN_AVX2
namespace cpu_avx2 {
constexpr int kVecBytes = 32;
#include "linear_cpu_impl.h"
}  // namespace cpu_avx2
PYGEN_END_AVX2
#endif

void skinny_linear_cpu_kernel(const SkinnyLinearParams& p) {
#if defined(__x86_64__)
  if (use_avx2()) return cpu_avx2::run_skinny_linear(p);
#endif
  cpu_base::run_skinny_linear(p);
}

}  // namespace pygen

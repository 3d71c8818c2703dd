// Skinny linear on CPU: the body of linear_cpu_impl.h for the baseline ISA and, on x86-64, for
// AVX2+FMA (chosen at run time, see cpu_isa.h).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#include "cpu_isa.h"
#include "linear.h"

namespace pygen {

#define PYGEN_CPU_IMPL "linear_cpu_impl.h"
#include "cpu_isa_instances.h"

void skinny_linear_cpu_kernel(const SkinnyLinearParams& p) {
#if defined(__x86_64__)
  if (use_avx2()) return cpu_avx2::run_skinny_linear(p);
#endif
  cpu_base::run_skinny_linear(p);
}

}  // namespace pygen

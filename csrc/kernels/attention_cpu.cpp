// CPU attention: the kernel bodies of attention_cpu_impl.h compiled for the baseline ISA and,
// on x86-64, again for AVX2+FMA; the AVX2 copy runs when the CPU has it. Light includes only
// (no ATen/ATen.h): attention.cpp checks the tensors and passes plain AttentionParams.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attention_params.h"
#include "cpu_isa.h"

namespace pygen {

#define PYGEN_CPU_IMPL "attention_cpu_impl.h"
#include "cpu_isa_instances.h"

void attention_fwd_cpu_kernel(const AttentionParams& p) {
#if defined(__x86_64__)
  if (use_avx2()) return cpu_avx2::run_forward(p);
#endif
  cpu_base::run_forward(p);
}

void attention_bwd_cpu_kernel(const AttentionBwdParams& p) {
#if defined(__x86_64__)
  if (use_avx2()) return cpu_avx2::run_backward(p);
#endif
  cpu_base::run_backward(p);
}

}  // namespace pygen

// CPU attention: the kernel bodies of attention_cpu_impl.h compiled for the baseline ISA and,
// on x86-64, again for AVX2+FMA; the AVX2 copy runs when the CPU has it. Light includes only
// (no ATen/ATen.h): attention.cpp checks the tensors and passes plain AttentionParams.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "attention_params.h"

namespace pygen {

template <typename T, int Bytes>
struct VecOf {
  typedef T type __attribute__((vector_size(Bytes)));
};

namespace cpu_base {
constexpr int kVecBytes = 16;  // SSE2 / NEON registers
#include "attention_cpu_impl.h"
}  // namespace cpu_base

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace cpu_avx2 {
constexpr int kVecBytes = 32;
#include "attention_cpu_impl.h"
}  // namespace cpu_avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

namespace {

// AVX2+FMA when the CPU has both, unless ATEN_CPU_CAPABILITY=default asks for the baseline
// (the variable torch honours for its own kernels).
bool use_avx2() {
#if defined(__x86_64__)
  static const bool yes = [] {
    const char* env = std::getenv("ATEN_CPU_CAPABILITY");
    if (env && std::string(env) == "default") return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
#else
  return false;
#endif
}

}  // namespace

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

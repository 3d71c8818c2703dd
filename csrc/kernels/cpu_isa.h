// CPU instruction-set plumbing shared by the CPU kernels. Each kernel body (*_cpu_impl.h) is
// written once with GCC/Clang vector extensions and compiled twice by its .cpp through
// cpu_isa_instances.h: in namespace cpu_base (baseline ISA, 16-byte vectors) and, on x86-64, in
// namespace cpu_avx2 between PYGEN_BEGIN_AVX2 / PYGEN_END_AVX2 (32-byte vectors); use_avx2()
// picks one at run time.
#pragma once
#include <cstdlib>
#include <string>

namespace pygen {

template <typename T, int Bytes>
struct VecOf {
  typedef T type __attribute__((vector_size(Bytes)));
};

// AVX2+FMA when the CPU has both, unless ATEN_CPU_CAPABILITY=default asks for the baseline
// (the variable torch honours for its own kernels).
inline bool use_avx2() {
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

}  // namespace pygen

#if defined(__x86_64__)
#if defined(__clang__)
#define PYGEN_BEGIN_AVX2 _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define PYGEN_END_AVX2 _Pragma("clang attribute pop")
#else
#define PYGEN_BEGIN_AVX2 _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define PYGEN_END_AVX2 _Pragma("GCC pop_options")
#endif
#endif

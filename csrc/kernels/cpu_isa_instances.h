// Compiles the kernel body named by PYGEN_CPU_IMPL (a *_cpu_impl.h) once per ISA: in namespace
// cpu_base (16-byte vectors) and, on x86-64, in namespace cpu_avx2 (AVX2+FMA, 32-byte vectors).
// Include it inside namespace pygen, after cpu_isa.h and what the body needs; no include guard.
namespace cpu_base {
constexpr int kVecBytes = 16;  // SSE2 / NEON registers
#include PYGEN_CPU_IMPL
}  // namespace cpu_base

#if defined(__x86_64__)
PYGEN_BEGIN_AVX2
namespace cpu_avx2 {
constexpr int kVecBytes = 32;
#include PYGEN_CPU_IMPL
}  // namespace cpu_avx2
PYGEN_END_AVX2
#endif

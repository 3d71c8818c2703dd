// CUDA attention kernels instantiated for __half (one file per dtype so a parallel build compiles
// them at once; bodies in attention_cuda.cuh).
#include "attention_cuda.cuh"

namespace pygen {
namespace attn_cuda {

cudaError_t fwd_f16(const AttentionParams& p, const AttnCudaFwdPlan& plan, void* workspace, cudaStream_t stream) {
  return launch_fwd<__half>(p, plan, workspace, stream);
}

cudaError_t bwd_f16(const AttentionBwdParams& p, const AttnCudaBwdPlan& plan, void* workspace, cudaStream_t stream) {
  return launch_bwd<__half>(p, plan, workspace, stream);
}

}  // namespace attn_cuda
}  // namespace pygen

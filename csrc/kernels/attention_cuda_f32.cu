// CUDA attention kernels instantiated for float (one file per dtype so a parallel build compiles
// them at once; bodies in attention_cuda.cuh).
#include "attention_cuda.cuh"

namespace pygen {
namespace attn_cuda {

cudaError_t fwd_f32(const AttentionParams& p, const AttnCudaFwdPlan& plan, void* workspace, cudaStream_t stream) {
  return launch_fwd<float>(p, plan, workspace, stream);
}

cudaError_t bwd_f32(const AttentionBwdParams& p, const AttnCudaBwdPlan& plan, void* workspace, cudaStream_t stream) {
  return launch_bwd<float>(p, plan, workspace, stream);
}

}  // namespace attn_cuda
}  // namespace pygen

// CUDA attention launchers. Plain C++ with the CUDA runtime types only (no ATen): attention.cpp
// validates the tensors, fills AttentionParams, asks for a plan (which kernel, how many KV
// splits, shared memory, workspace bytes), allocates the workspace and launches on its stream.
// Kernel design and dispatch heuristics: see attention_cuda.cuh.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "attention_params.h"

namespace pygen {

// How one forward call runs. Filled by plan_attention_fwd_cuda(); plain values only.
struct AttnCudaFwdPlan {
  int kind = 0;               // kRows (prefill, any shape) or kDecode (few rows per (kv batch, head))
  int nv = 1;                 // output dims per lane are 32 * nv per block (1..5)
  int rd = 8;                 // kDecode: rows per pair compiled for (1, 4 or 8)
  int dc = 1;                 // q/k dims per shared-memory chunk
  int dcp = 8;                // dc rounded up to a multiple of 8
  int nchunks = 1;            // ceil(qk_dim / dc)
  int ldq = 8;                // row stride of the staged queries
  int dvc = 1;                // output (v) dims per block
  int64_t n_dvc = 1;          // ceil(v_dim / dvc): blocks per rows along the v dim
  int64_t row_tiles = 1;      // kRows: query-row tiles per (kv batch, head)
  int64_t nsplit = 1;         // kDecode: KV splits (partials merged by a combine kernel when > 1)
  int64_t split_len = 0;      // kDecode: keys per split
  int64_t work = 0;           // work items (blocks loop over them)
  int64_t grid = 0;           // blocks launched
  size_t smem = 0;            // dynamic shared memory bytes
  size_t workspace_bytes = 0; // device scratch the caller allocates (split-KV partials)
  static constexpr int kRows = 0, kDecode = 1;
};

// How one backward call runs.
struct AttnCudaBwdPlan {
  int warps = 4;              // warps per block
  size_t smem_dkdv = 0;       // dynamic shared memory of the dK/dV kernel
  size_t smem_dq = 0;         // and of the dQ kernel
  int64_t grid_rows = 0, grid_keys = 0;
  size_t workspace_bytes = 0; // D_i = rowsum(dO * O), in the accumulation type
};

// Plans for the current CUDA device. An empty string means OK; otherwise the message of the
// c10::ValueError the caller raises (nothing is launched).
std::string plan_attention_fwd_cuda(const AttentionParams& p, AttnCudaFwdPlan& plan);
std::string plan_attention_bwd_cuda(const AttentionBwdParams& p, AttnCudaBwdPlan& plan);

// Launch on `stream`; `workspace` holds plan.workspace_bytes (may be null when 0). Returns the
// first launch error (cudaSuccess otherwise). Never synchronises.
cudaError_t launch_attention_fwd_cuda(const AttentionParams& p, const AttnCudaFwdPlan& plan, void* workspace,
                                      cudaStream_t stream);
cudaError_t launch_attention_bwd_cuda(const AttentionBwdParams& p, const AttnCudaBwdPlan& plan, void* workspace,
                                      cudaStream_t stream);

// Per-dtype instantiations (attention_cuda_<dtype>.cu), so a parallel build compiles them at once.
namespace attn_cuda {
cudaError_t fwd_f32(const AttentionParams&, const AttnCudaFwdPlan&, void*, cudaStream_t);
cudaError_t fwd_f64(const AttentionParams&, const AttnCudaFwdPlan&, void*, cudaStream_t);
cudaError_t fwd_f16(const AttentionParams&, const AttnCudaFwdPlan&, void*, cudaStream_t);
cudaError_t fwd_bf16(const AttentionParams&, const AttnCudaFwdPlan&, void*, cudaStream_t);
cudaError_t bwd_f32(const AttentionBwdParams&, const AttnCudaBwdPlan&, void*, cudaStream_t);
cudaError_t bwd_f64(const AttentionBwdParams&, const AttnCudaBwdPlan&, void*, cudaStream_t);
cudaError_t bwd_f16(const AttentionBwdParams&, const AttnCudaBwdPlan&, void*, cudaStream_t);
cudaError_t bwd_bf16(const AttentionBwdParams&, const AttnCudaBwdPlan&, void*, cudaStream_t);
}  // namespace attn_cuda

}  // namespace pygen

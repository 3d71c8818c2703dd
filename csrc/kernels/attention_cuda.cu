// CUDA attention: planning (which kernel, chunking, KV splits, shared memory, workspace) and
// the dtype dispatch. The kernels are in attention_cuda.cuh, instantiated per dtype in
// attention_cuda_{f32,f64,f16,bf16}.cu. No ATen here: attention.cpp owns tensors and errors.
#include <algorithm>
#include <string>
#include <vector>

#include "attention_cuda.cuh"
#include "attention_cuda.h"

namespace pygen {
namespace {

using namespace attn_cuda;

struct DeviceInfo {
  int sms = 1;
  size_t smem_optin = 48 * 1024;
};

std::string query_device(DeviceInfo& d) {
  int dev = 0, sms = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (e != cudaSuccess) return std::string("attention: cannot query the CUDA device: ") + cudaGetErrorString(e);
  d.sms = std::max(1, sms);
  d.smem_optin = size_t(std::max(optin, 48 * 1024));
  return {};
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t m) { return ceil_div(a, m) * m; }

// q/k chunk widths to try, widest first: the whole dim when it fits a chunk, then multiples of 8.
std::vector<int64_t> chunk_candidates(int64_t qk_dim) {
  std::vector<int64_t> c{std::min<int64_t>(qk_dim, kMaxChunk)};
  for (int64_t w : {128, 64, 32})
    if (w < c.back()) c.push_back(w);
  return c;
}

void set_chunk(const AttentionParams& p, AttnCudaFwdPlan& plan, int64_t dc) {
  plan.dc = int(dc);
  plan.dcp = int(round_up(dc, 8));
  plan.nchunks = int(ceil_div(p.qk_dim, dc));
}

// Shared memory kept per block when there is a choice: small enough for a few blocks per SM.
constexpr size_t kSmemBudget = 96 * 1024;

}  // namespace

std::string plan_attention_fwd_cuda(const AttentionParams& p, AttnCudaFwdPlan& plan) {
  plan = AttnCudaFwdPlan{};
  const int64_t R = p.kv_group * p.q_len, pairs = p.kv_batch * p.heads;
  if (pairs <= 0 || R <= 0 || p.v_dim <= 0 || p.qk_dim <= 0) return {};  // nothing to compute (work = 0)
  DeviceInfo dev;
  std::string err = query_device(dev);
  if (!err.empty()) return err;
  const size_t acc = p.dtype == AttnDtype::kDouble ? 8 : 4;
  plan.nv = p.dtype == AttnDtype::kDouble ? kMaxNV : int(std::min<int64_t>(kMaxNV, ceil_div(p.v_dim, 32)));
  plan.dvc = int(std::min<int64_t>(p.v_dim, 32 * plan.nv));
  plan.n_dvc = ceil_div(p.v_dim, plan.dvc);
  const auto cands = chunk_candidates(p.qk_dim);

  if (R <= kDecodeRows) {
    plan.rd = R <= 1 ? 1 : (R <= 4 ? 4 : kDecodeRows);
    // Decode: the first chunk width within the budget, else the first that fits at all.
    for (const size_t limit : {std::min(kSmemBudget, dev.smem_optin), dev.smem_optin}) {
      for (const int64_t dc : cands) {
        set_chunk(p, plan, dc);
        plan.ldq = plan.nchunks * plan.dcp;
        const size_t smem = decode_smem_bytes(plan.rd, plan.ldq, plan.dcp, plan.dvc, acc);
        if (smem <= limit) {
          plan.kind = AttnCudaFwdPlan::kDecode;
          plan.smem = smem;
          break;
        }
      }
      if (plan.smem) break;
    }
    if (plan.smem) {
      // Split KV when pairs x output chunks leave SMs idle; at least 2 tiles of all warps per split.
      const int64_t base = pairs * plan.n_dvc, target = int64_t(dev.sms) * 4, min_span = 2 * kWarps * kBK;
      int64_t nsplit = 1;
      if (base < target && p.kv_len > min_span)
        nsplit = std::min<int64_t>({ceil_div(target, base), ceil_div(p.kv_len, min_span), 256});
      plan.split_len = round_up(ceil_div(std::max<int64_t>(p.kv_len, 1), nsplit), kWarps * kBK);
      plan.nsplit = std::max<int64_t>(1, ceil_div(p.kv_len, plan.split_len));
      plan.work = pairs * plan.nsplit * plan.n_dvc;
      plan.grid = plan.work;
      if (plan.nsplit > 1) plan.workspace_bytes = acc * size_t(pairs * plan.nsplit * R) * size_t(2 + p.v_dim);
      return {};
    }
  }

  // Rows (prefill; also decode shapes whose dims do not fit the decode kernel).
  {
    const int nv = plan.nv, dvc = plan.dvc;
    const int64_t n_dvc = plan.n_dvc;
    plan = AttnCudaFwdPlan{};
    plan.nv = nv;
    plan.dvc = dvc;
    plan.n_dvc = n_dvc;
  }
  plan.kind = AttnCudaFwdPlan::kRows;
  for (const size_t limit : {std::min(kSmemBudget, dev.smem_optin), dev.smem_optin}) {
    for (const int64_t dc : cands) {
      set_chunk(p, plan, dc);
      plan.ldq = plan.dcp;
      const size_t smem =
          (size_t(kBQ) * plan.ldq + size_t(kBK) * k_stride(plan.dcp) + size_t(kBK) * plan.dvc + size_t(kBQ) * kBK) * acc;
      if (smem <= limit) {
        plan.smem = smem;
        break;
      }
    }
    if (plan.smem) break;
  }
  if (!plan.smem)
    return "attention: the CUDA kernel needs more shared memory than this device has (qk_dim " +
           std::to_string(p.qk_dim) + ", v_dim " + std::to_string(p.v_dim) + ")";
  plan.row_tiles = ceil_div(R, kBQ);
  plan.work = pairs * plan.row_tiles * plan.n_dvc;
  plan.grid = plan.work;
  return {};
}

std::string plan_attention_bwd_cuda(const AttentionBwdParams& bp, AttnCudaBwdPlan& plan) {
  plan = AttnCudaBwdPlan{};
  const AttentionParams& p = bp.fwd;
  const int64_t rows = p.batch * p.q_len * p.heads, keys = p.kv_batch * p.kv_len * p.heads;
  if (rows <= 0 && keys <= 0) return {};
  DeviceInfo dev;
  std::string err = query_device(dev);
  if (!err.empty()) return err;
  const size_t acc = p.dtype == AttnDtype::kDouble ? 8 : 4;
  auto need = [&](int warps) { return size_t(warps) * size_t(p.qk_dim + p.v_dim) * acc; };
  plan.warps = kWarps;
  while (plan.warps > 1 && need(plan.warps) > std::min(kSmemBudget, dev.smem_optin)) plan.warps /= 2;
  if (need(plan.warps) > dev.smem_optin)
    return "attention: head dims qk " + std::to_string(p.qk_dim) + " + v " + std::to_string(p.v_dim) +
           " are too large for the CUDA attention backward";
  plan.smem_dkdv = need(plan.warps);
  plan.smem_dq = size_t(plan.warps) * size_t(p.qk_dim) * acc;
  plan.grid_rows = ceil_div(rows, plan.warps);
  plan.grid_keys = ceil_div(keys, plan.warps);
  plan.workspace_bytes = size_t(std::max<int64_t>(rows, 0)) * acc;
  return {};
}

cudaError_t launch_attention_fwd_cuda(const AttentionParams& p, const AttnCudaFwdPlan& plan, void* workspace,
                                      cudaStream_t stream) {
  if (plan.work <= 0) return cudaSuccess;
  switch (p.dtype) {
    case AttnDtype::kFloat: return attn_cuda::fwd_f32(p, plan, workspace, stream);
    case AttnDtype::kDouble: return attn_cuda::fwd_f64(p, plan, workspace, stream);
    case AttnDtype::kHalf: return attn_cuda::fwd_f16(p, plan, workspace, stream);
    case AttnDtype::kBFloat16: return attn_cuda::fwd_bf16(p, plan, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_attention_bwd_cuda(const AttentionBwdParams& p, const AttnCudaBwdPlan& plan, void* workspace,
                                      cudaStream_t stream) {
  if (plan.grid_rows <= 0 && plan.grid_keys <= 0) return cudaSuccess;
  switch (p.fwd.dtype) {
    case AttnDtype::kFloat: return attn_cuda::bwd_f32(p, plan, workspace, stream);
    case AttnDtype::kDouble: return attn_cuda::bwd_f64(p, plan, workspace, stream);
    case AttnDtype::kHalf: return attn_cuda::bwd_f16(p, plan, workspace, stream);
    case AttnDtype::kBFloat16: return attn_cuda::bwd_bf16(p, plan, workspace, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace pygen

// Device-neutral part of attention: argument validation, the plain AttentionParams the kernels
// read, output allocation, and the CPU/CUDA operator registrations. Fake (Meta) impls and the
// autograd formula are registered from Python (pygen/ops/attention.py) so they handle symbolic
// shapes under torch.compile.
#include "attention.h"

#include <torch/library.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "attention_params.h"

#ifdef PYGEN_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "attention_cuda.h"
#endif

namespace pygen {

AttentionShape check_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const std::optional<at::Tensor>& key_padding_mask,
                               const std::optional<at::Tensor>& attn_bias, int64_t kv_group) {
  TORCH_CHECK_VALUE(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
                    "attention: q, k, v must be 4-D [batch, len, heads, dim], got q ", q.sizes(),
                    ", k ", k.sizes(), ", v ", v.sizes());
  TORCH_CHECK_VALUE(q.scalar_type() == k.scalar_type() && q.scalar_type() == v.scalar_type(),
                    "attention: q, k, v must share a dtype, got ", q.scalar_type(), ", ",
                    k.scalar_type(), ", ", v.scalar_type());
  const auto t = q.scalar_type();
  TORCH_CHECK_VALUE(t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16,
                    "attention: q, k, v must be float32, float64, float16 or bfloat16, got ", t);
  TORCH_CHECK_VALUE(q.device() == k.device() && q.device() == v.device(),
                    "attention: q, k, v must be on one device, got ", q.device(), ", ", k.device(),
                    ", ", v.device());
  TORCH_CHECK_VALUE(kv_group >= 1, "attention: kv_group must be >= 1, got ", kv_group);
  AttentionShape s{q.size(0), k.size(0), q.size(1), k.size(1), q.size(2), q.size(3), v.size(3), kv_group};
  TORCH_CHECK_VALUE(s.batch == s.kv_batch * kv_group, "attention: q batch ", s.batch,
                    " must equal k batch ", s.kv_batch, " x kv_group ", kv_group);
  TORCH_CHECK_VALUE(v.size(0) == s.kv_batch && v.size(1) == s.kv_len,
                    "attention: k and v must agree on batch and length, got k ", k.sizes(), ", v ",
                    v.sizes());
  TORCH_CHECK_VALUE(k.size(2) == s.heads && v.size(2) == s.heads, "attention: head counts differ: q ",
                    s.heads, ", k ", k.size(2), ", v ", v.size(2));
  TORCH_CHECK_VALUE(k.size(3) == s.qk_dim, "attention: q and k head dims differ: ", s.qk_dim, " vs ",
                    k.size(3));
  TORCH_CHECK_VALUE(s.qk_dim > 0 && s.v_dim > 0, "attention: head dims must be positive, got ", s.qk_dim,
                    " and ", s.v_dim);
  TORCH_CHECK_VALUE(q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1,
                    "attention: the head dim of q, k, v must be contiguous (stride 1)");
  if (key_padding_mask) {
    const auto& m = *key_padding_mask;
    TORCH_CHECK_VALUE(m.scalar_type() == at::kBool, "attention: key_padding_mask must be bool, got ",
                      m.scalar_type());
    TORCH_CHECK_VALUE(m.dim() == 2 && m.size(0) == s.kv_batch && m.size(1) == s.kv_len,
                      "attention: key_padding_mask must be [", s.kv_batch, ", ", s.kv_len, "], got ",
                      m.sizes());
    TORCH_CHECK_VALUE(m.device() == q.device(), "attention: key_padding_mask is on ", m.device(),
                      ", q on ", q.device());
  }
  if (attn_bias) {
    const auto& b = *attn_bias;
    TORCH_CHECK_VALUE(b.dim() == 4, "attention: attn_bias must be 4-D, broadcastable to [", s.batch,
                      ", ", s.heads, ", ", s.q_len, ", ", s.kv_len, "], got ", b.sizes());
    const int64_t want[4] = {s.batch, s.heads, s.q_len, s.kv_len};
    for (int i = 0; i < 4; ++i) {
      TORCH_CHECK_VALUE(b.size(i) == want[i] || b.size(i) == 1, "attention: attn_bias of shape ",
                        b.sizes(), " does not broadcast to [", s.batch, ", ", s.heads, ", ", s.q_len,
                        ", ", s.kv_len, "]");
    }
    TORCH_CHECK_VALUE(at::isFloatingType(b.scalar_type()), "attention: attn_bias must be floating point");
    TORCH_CHECK_VALUE(b.device() == q.device(), "attention: attn_bias is on ", b.device(), ", q on ",
                      q.device());
  }
  return s;
}

namespace {

// The accumulation dtype, also that of lse and of the bias the kernels read.
at::ScalarType acc_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

AttnDtype attn_dtype(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return AttnDtype::kDouble;
    case at::kHalf: return AttnDtype::kHalf;
    case at::kBFloat16: return AttnDtype::kBFloat16;
    default: return AttnDtype::kFloat;
  }
}

// Kernel outputs. PYGEN_POISON_OUTPUTS=1 fills them with NaN first, so tests can prove that the
// kernels write every element.
at::Tensor new_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  auto t = at::empty(sizes, options);
  const char* poison = std::getenv("PYGEN_POISON_OUTPUTS");
  if (poison && poison[0] == '1') t.fill_(NAN);
  return t;
}

// Tensors the kernels read through AttentionParams, kept alive for the call.
struct Inputs {
  at::Tensor mask, bias;
};

AttentionParams make_params(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::optional<at::Tensor>& key_padding_mask,
                            const std::optional<at::Tensor>& attn_bias, bool causal, double scale,
                            const AttentionShape& s, Inputs& keep) {
  AttentionParams p{};
  p.dtype = attn_dtype(q.scalar_type());
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  for (int d = 0; d < 3; ++d) {
    p.q_stride[d] = q.stride(d);
    p.k_stride[d] = k.stride(d);
    p.v_stride[d] = v.stride(d);
  }
  if (key_padding_mask) {
    keep.mask = key_padding_mask->contiguous();
    p.mask = keep.mask.data_ptr<bool>();
  }
  if (attn_bias) {
    keep.bias = attn_bias->to(acc_type(q.scalar_type())).expand({s.batch, s.heads, s.q_len, s.kv_len});
    p.bias = keep.bias.data_ptr();
    for (int d = 0; d < 4; ++d) p.bias_stride[d] = keep.bias.stride(d);
  }
  p.batch = s.batch;
  p.kv_batch = s.kv_batch;
  p.q_len = s.q_len;
  p.kv_len = s.kv_len;
  p.heads = s.heads;
  p.qk_dim = s.qk_dim;
  p.v_dim = s.v_dim;
  p.kv_group = s.kv_group;
  p.causal = causal;
  p.scale = scale;
  return p;
}

std::tuple<at::Tensor, at::Tensor> new_fwd_outputs(const at::Tensor& q, const AttentionShape& s) {
  return {new_output({s.batch, s.q_len, s.heads, s.v_dim}, q.options()),
          new_output({s.batch, s.heads, s.q_len}, q.options().dtype(acc_type(q.scalar_type())))};
}

// Checks the backward's extra tensors and returns grad_out and out contiguous.
std::tuple<at::Tensor, at::Tensor> check_bwd(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& out,
                                             const at::Tensor& lse, const AttentionShape& s) {
  const std::vector<int64_t> out_shape{s.batch, s.q_len, s.heads, s.v_dim};
  TORCH_CHECK_VALUE(grad_out.sizes() == out_shape && out.sizes() == out_shape, "attention_bwd: grad_out ",
                    grad_out.sizes(), " and out ", out.sizes(), " must be ", at::IntArrayRef(out_shape));
  TORCH_CHECK_VALUE(grad_out.scalar_type() == q.scalar_type() && out.scalar_type() == q.scalar_type(),
                    "attention_bwd: grad_out and out must have q's dtype ", q.scalar_type());
  TORCH_CHECK_VALUE(lse.sizes() == at::IntArrayRef({s.batch, s.heads, s.q_len}) &&
                        lse.scalar_type() == acc_type(q.scalar_type()),
                    "attention_bwd: lse must be [", s.batch, ", ", s.heads, ", ", s.q_len, "] of dtype ",
                    acc_type(q.scalar_type()), ", got ", lse.sizes(), " ", lse.scalar_type());
  TORCH_CHECK_VALUE(grad_out.device() == q.device() && out.device() == q.device() && lse.device() == q.device(),
                    "attention_bwd: grad_out, out and lse must be on q's device ", q.device());
  return {grad_out.contiguous(), out.contiguous()};
}

// Every device's entry: validate, allocate the outputs, fill the params, and hand them to
// `run`, which launches that device's kernel.
template <typename Run>
std::tuple<at::Tensor, at::Tensor> run_fwd(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                           const std::optional<at::Tensor>& key_padding_mask,
                                           const std::optional<at::Tensor>& attn_bias, bool causal, double scale,
                                           int64_t kv_group, Run run) {
  const auto s = check_attention(q, k, v, key_padding_mask, attn_bias, kv_group);
  auto [out, lse] = new_fwd_outputs(q, s);
  Inputs keep;
  auto p = make_params(q, k, v, key_padding_mask, attn_bias, causal, scale, s, keep);
  p.out = out.data_ptr();
  p.lse = lse.data_ptr();
  run(p);
  return {out, lse};
}

template <typename Run>
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_bwd(
    const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const std::optional<at::Tensor>& key_padding_mask,
    const std::optional<at::Tensor>& attn_bias, bool causal, double scale, int64_t kv_group, Run run) {
  const auto s = check_attention(q, k, v, key_padding_mask, attn_bias, kv_group);
  auto [gout, outc] = check_bwd(grad_out, q, out, lse, s);
  const auto lsec = lse.contiguous();
  auto dq = new_output(q.sizes(), q.options());
  auto dk = new_output(k.sizes(), k.options());
  auto dv = new_output(v.sizes(), v.options());
  Inputs keep;
  AttentionBwdParams p{};
  p.fwd = make_params(q, k, v, key_padding_mask, attn_bias, causal, scale, s, keep);
  p.fwd.out = outc.data_ptr();
  p.fwd.lse = lsec.data_ptr();
  p.grad_out = gout.data_ptr();
  p.grad_q = dq.data_ptr();
  p.grad_k = dk.data_ptr();
  p.grad_v = dv.data_ptr();
  run(p);
  return {dq, dk, dv};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> attention_fwd_cpu(const at::Tensor& q, const at::Tensor& k,
                                                     const at::Tensor& v,
                                                     const std::optional<at::Tensor>& key_padding_mask,
                                                     const std::optional<at::Tensor>& attn_bias,
                                                     bool causal, double scale, int64_t kv_group) {
  return run_fwd(q, k, v, key_padding_mask, attn_bias, causal, scale, kv_group,
                 [](const AttentionParams& p) { attention_fwd_cpu_kernel(p); });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_bwd_cpu(
    const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const std::optional<at::Tensor>& key_padding_mask,
    const std::optional<at::Tensor>& attn_bias, bool causal, double scale, int64_t kv_group) {
  return run_bwd(grad_out, q, k, v, out, lse, key_padding_mask, attn_bias, causal, scale, kv_group,
                 [](const AttentionBwdParams& p) { attention_bwd_cpu_kernel(p); });
}

TORCH_LIBRARY_IMPL(pygen, CPU, m) {
  m.impl("attention_fwd", &attention_fwd_cpu);
  m.impl("attention_bwd", &attention_bwd_cpu);
}

#ifdef PYGEN_WITH_CUDA
namespace {

// Plans the kernels for params p (refusing, before any launch, shapes they cannot run), then
// launches them on the current stream of q's device with a workspace from torch's allocator.
template <typename Plan, typename Params, typename PlanFn, typename LaunchFn>
void launch_cuda(const at::Tensor& q, const Params& p, PlanFn plan_fn, LaunchFn launch_fn) {
  TORCH_CHECK_VALUE(q.is_cuda(), "attention: CUDA kernel called with q on ", q.device());
  const c10::cuda::CUDAGuard guard(q.device());
  Plan plan;
  const std::string err = plan_fn(p, plan);
  TORCH_CHECK_VALUE(err.empty(), err);
  at::Tensor workspace;
  if (plan.workspace_bytes)
    workspace = at::empty({int64_t(plan.workspace_bytes)}, q.options().dtype(at::kByte));
  C10_CUDA_CHECK(launch_fn(p, plan, workspace.defined() ? workspace.data_ptr() : nullptr,
                           at::cuda::getCurrentCUDAStream()));
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> attention_fwd_cuda(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v,
                                                      const std::optional<at::Tensor>& key_padding_mask,
                                                      const std::optional<at::Tensor>& attn_bias,
                                                      bool causal, double scale, int64_t kv_group) {
  return run_fwd(q, k, v, key_padding_mask, attn_bias, causal, scale, kv_group, [&](const AttentionParams& p) {
    launch_cuda<AttnCudaFwdPlan>(q, p, plan_attention_fwd_cuda, launch_attention_fwd_cuda);
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_bwd_cuda(
    const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const std::optional<at::Tensor>& key_padding_mask,
    const std::optional<at::Tensor>& attn_bias, bool causal, double scale, int64_t kv_group) {
  return run_bwd(grad_out, q, k, v, out, lse, key_padding_mask, attn_bias, causal, scale, kv_group,
                 [&](const AttentionBwdParams& p) {
                   launch_cuda<AttnCudaBwdPlan>(q, p, plan_attention_bwd_cuda, launch_attention_bwd_cuda);
                 });
}

TORCH_LIBRARY_IMPL(pygen, CUDA, m) {
  m.impl("attention_fwd", &attention_fwd_cuda);
  m.impl("attention_bwd", &attention_bwd_cuda);
}
#endif

}  // namespace pygen

// Device-neutral part of attention: argument validation and the Meta implementation.
#include "attention.h"

#include <torch/library.h>

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
  TORCH_CHECK_VALUE(at::isFloatingType(q.scalar_type()), "attention: q must be floating point, got ",
                    q.scalar_type());
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

at::Tensor expand_bias(const at::Tensor& bias, const AttentionShape& s) {
  return bias.expand({s.batch, s.heads, s.q_len, s.kv_len});
}

namespace {

std::tuple<at::Tensor, at::Tensor> attention_fwd_meta(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v,
                                                      const std::optional<at::Tensor>& key_padding_mask,
                                                      const std::optional<at::Tensor>& attn_bias,
                                                      bool causal, double scale, int64_t kv_group) {
  auto s = check_attention(q, k, v, key_padding_mask, attn_bias, kv_group);
  auto out = at::empty({s.batch, s.q_len, s.heads, s.v_dim}, q.options());
  auto lse = at::empty({s.batch, s.heads, s.q_len}, q.options().dtype(at::kFloat));
  return {out, lse};
}

}  // namespace

TORCH_LIBRARY_IMPL(pygen, Meta, m) { m.impl("attention_fwd", &attention_fwd_meta); }
TORCH_LIBRARY_IMPL(pygen, CPU, m) { m.impl("attention_fwd", &attention_fwd_cpu); }

}  // namespace pygen

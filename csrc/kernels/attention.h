// Fused attention: argument checks shared by every device, and the per-device entry points.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace pygen {

// Shapes of one attention call, validated once by check_attention().
struct AttentionShape {
  int64_t batch, kv_batch, q_len, kv_len, heads, qk_dim, v_dim, kv_group;
};

AttentionShape check_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const std::optional<at::Tensor>& key_padding_mask,
                               const std::optional<at::Tensor>& attn_bias, int64_t kv_group);

// attn_bias expanded to [B, H, Lq, Lk] (stride 0 on broadcast dims), in q's dtype or float.
at::Tensor expand_bias(const at::Tensor& bias, const AttentionShape& s);

std::tuple<at::Tensor, at::Tensor> attention_fwd_cpu(const at::Tensor& q, const at::Tensor& k,
                                                     const at::Tensor& v,
                                                     const std::optional<at::Tensor>& key_padding_mask,
                                                     const std::optional<at::Tensor>& attn_bias,
                                                     bool causal, double scale, int64_t kv_group);

}  // namespace pygen

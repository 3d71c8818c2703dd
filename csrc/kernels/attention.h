// Fused attention: argument checks shared by every device, and the per-device entry points
// registered for the pygen::attention_fwd / attention_bwd operators (schemas in csrc/ops.cpp).
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

std::tuple<at::Tensor, at::Tensor> attention_fwd_cpu(const at::Tensor& q, const at::Tensor& k,
                                                     const at::Tensor& v,
                                                     const std::optional<at::Tensor>& key_padding_mask,
                                                     const std::optional<at::Tensor>& attn_bias,
                                                     bool causal, double scale, int64_t kv_group);

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_bwd_cpu(
    const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const std::optional<at::Tensor>& key_padding_mask,
    const std::optional<at::Tensor>& attn_bias, bool causal, double scale, int64_t kv_group);

}  // namespace pygen

// CPU attention: one query row at a time, scores for that row only, parallel over rows.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "attention.h"

namespace pygen {
namespace {

template <typename scalar_t>
void attention_rows(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const bool* mask, int64_t mask_stride, const at::Tensor& bias, bool causal,
                    double scale, const AttentionShape& s, at::Tensor& out, at::Tensor& lse) {
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const scalar_t* qp = q.data_ptr<scalar_t>();
  const scalar_t* kp = k.data_ptr<scalar_t>();
  const scalar_t* vp = v.data_ptr<scalar_t>();
  scalar_t* op = out.data_ptr<scalar_t>();
  float* lp = lse.data_ptr<float>();
  const bool has_bias = bias.defined();
  const int64_t rows = s.batch * s.heads * s.q_len;
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> score(s.kv_len), acc(s.v_dim);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r % s.q_len, h = (r / s.q_len) % s.heads, b = r / (s.q_len * s.heads);
      const int64_t kb = b / s.kv_group;
      const scalar_t* qrow = qp + b * q.stride(0) + i * q.stride(1) + h * q.stride(2);
      const int64_t last = causal ? std::min(s.kv_len, i + s.kv_len - s.q_len + 1) : s.kv_len;
      acc_t mx = -std::numeric_limits<acc_t>::infinity();
      for (int64_t j = 0; j < s.kv_len; ++j) {
        bool visible = j < last && (!mask || mask[kb * mask_stride + j]);
        if (!visible) {
          score[j] = -std::numeric_limits<acc_t>::infinity();
          continue;
        }
        const scalar_t* krow = kp + kb * k.stride(0) + j * k.stride(1) + h * k.stride(2);
        acc_t dot = 0;
        for (int64_t d = 0; d < s.qk_dim; ++d) dot += acc_t(qrow[d]) * acc_t(krow[d]);
        dot *= acc_t(scale);
        if (has_bias) {
          dot += acc_t(bias.data_ptr<scalar_t>()[b * bias.stride(0) + h * bias.stride(1) +
                                                 i * bias.stride(2) + j * bias.stride(3)]);
        }
        score[j] = dot;
        mx = std::max(mx, dot);
      }
      scalar_t* orow = op + ((b * s.q_len + i) * s.heads + h) * s.v_dim;
      if (mx == -std::numeric_limits<acc_t>::infinity()) {  // no visible key: output 0
        for (int64_t d = 0; d < s.v_dim; ++d) orow[d] = scalar_t(0);
        lp[(b * s.heads + h) * s.q_len + i] = -std::numeric_limits<float>::infinity();
        continue;
      }
      std::fill(acc.begin(), acc.end(), acc_t(0));
      acc_t sum = 0;
      for (int64_t j = 0; j < s.kv_len; ++j) {
        if (score[j] == -std::numeric_limits<acc_t>::infinity()) continue;
        const acc_t p = std::exp(score[j] - mx);
        sum += p;
        const scalar_t* vrow = vp + kb * v.stride(0) + j * v.stride(1) + h * v.stride(2);
        for (int64_t d = 0; d < s.v_dim; ++d) acc[d] += p * acc_t(vrow[d]);
      }
      for (int64_t d = 0; d < s.v_dim; ++d) orow[d] = scalar_t(acc[d] / sum);
      lp[(b * s.heads + h) * s.q_len + i] = float(mx + std::log(sum));
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> attention_fwd_cpu(const at::Tensor& q, const at::Tensor& k,
                                                     const at::Tensor& v,
                                                     const std::optional<at::Tensor>& key_padding_mask,
                                                     const std::optional<at::Tensor>& attn_bias,
                                                     bool causal, double scale, int64_t kv_group) {
  auto s = check_attention(q, k, v, key_padding_mask, attn_bias, kv_group);
  auto out = at::empty({s.batch, s.q_len, s.heads, s.v_dim}, q.options());
  auto lse = at::empty({s.batch, s.heads, s.q_len}, q.options().dtype(at::kFloat));
  at::Tensor mask;
  if (key_padding_mask) mask = key_padding_mask->contiguous();
  at::Tensor bias;
  if (attn_bias) bias = expand_bias(attn_bias->to(q.scalar_type()), s);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q.scalar_type(), "attention_fwd_cpu", [&] {
    attention_rows<scalar_t>(q, k, v, mask.defined() ? mask.data_ptr<bool>() : nullptr, s.kv_len, bias,
                             causal, scale, s, out, lse);
  });
  return {out, lse};
}

}  // namespace pygen

// Schemas of every pygen operator, in one place. Implementations register per device
// (CPU in csrc/kernels/*_cpu.cpp, CUDA in *_cuda.cu, Meta for torch.compile) with
// TORCH_LIBRARY_IMPL next to their kernels.
#include <torch/library.h>

TORCH_LIBRARY(pygen, m) {
  // Fused attention. q [B, Lq, H, Dqk], k [B/kv_group, Lk, H, Dqk], v [B/kv_group, Lk, H, Dv]
  // (last dim contiguous, other strides free). key_padding_mask [B/kv_group, Lk] bool, true =
  // attend. attn_bias additive, broadcastable to [B, H, Lq, Lk]. causal is bottom-right aligned
  // (query i sees keys j <= i + Lk - Lq). Query row b reads kv row b / kv_group (beams share the
  // encoder's keys). Returns out [B, Lq, H, Dv] and the row log-sum-exp [B, H, Lq] (float32,
  // -inf for rows with no visible key, whose output is 0).
  m.def("attention_fwd(Tensor q, Tensor k, Tensor v, Tensor? key_padding_mask, Tensor? attn_bias, "
        "bool causal, float scale, int kv_group) -> (Tensor, Tensor)");
}

// Plain description of one attention call, shared by the CPU and CUDA kernels. No torch types,
// so the kernel translation units (attention_cpu.cpp, attention_cuda.cu) compile without the
// heavy ATen headers; attention.cpp validates the tensors and fills these structs.
#pragma once
#include <cstdint>

namespace pygen {

enum class AttnDtype : int { kFloat, kDouble, kHalf, kBFloat16 };

// Forward. Strides are in elements over (batch, len, head); the head dim is contiguous.
// Query rows are addressed per kv row: row r of kv batch kb is query (b = kb * kv_group +
// r / q_len, i = r % q_len), so beams sharing keys are one block of kv_group * q_len rows.
struct AttentionParams {
  AttnDtype dtype;
  const void* q;
  const void* k;
  const void* v;
  int64_t q_stride[3], k_stride[3], v_stride[3];
  const bool* mask;        // [kv_batch, kv_len] contiguous, true = attend; nullptr: none
  const void* bias;        // additive, in the accumulation type; nullptr: none
  int64_t bias_stride[4];  // over (batch, head, q, k); 0 on broadcast dims
  void* out;               // [batch, q_len, heads, v_dim] contiguous
  void* lse;               // [batch, heads, q_len] in the accumulation type
  int64_t batch, kv_batch, q_len, kv_len, heads, qk_dim, v_dim, kv_group;
  bool causal;
  double scale;
};

// Backward: the forward's inputs, its out and lse, and the gradients to fill.
struct AttentionBwdParams {
  AttentionParams fwd;
  const void* grad_out;  // [batch, q_len, heads, v_dim] contiguous
  void* grad_q;          // contiguous, shaped like q, k, v
  void* grad_k;
  void* grad_v;
};

// The accumulation type: double for double inputs, float otherwise.
inline bool accumulates_in_double(AttnDtype t) { return t == AttnDtype::kDouble; }

// CPU kernels (attention_cpu.cpp): blocked, vectorised, multi-threaded with at::parallel_for.
void attention_fwd_cpu_kernel(const AttentionParams& p);
void attention_bwd_cpu_kernel(const AttentionBwdParams& p);

}  // namespace pygen

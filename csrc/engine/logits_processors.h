// transformers' logits processors (the fused pygen::logits_process kernel, as Python's
// LogitsProcessor calls it) and sampling warpers, in the order generate() applies them.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

namespace pygen {

struct LogitsProcessors {
  double repetition_penalty = 1.0;
  int64_t no_repeat_ngram_size = 0;
  int64_t min_length = 0;
  std::vector<int64_t> eos_token_ids;  // banned below min_length
  std::optional<int64_t> forced_bos_token_id;
  std::vector<int64_t> forced_eos_token_ids;
  int64_t max_length = 0;
  // Warpers, applied only when sampling.
  bool sample = false;
  double temperature = 1.0;
  int64_t top_k = 0;  // 0 = off
  double top_p = 1.0;
  int64_t min_tokens_to_keep = 1;

  // Processed float32 scores [rows, vocab] of logits [rows, vocab] (any float dtype) given the
  // sequences so far [rows, cur_len]; log_softmax first replaces each row by its log-softmax
  // (beam search). Runs on the CPU when the device has no kernels, returning to the logits' device.
  at::Tensor operator()(const at::Tensor& sequences, const at::Tensor& logits, bool log_softmax = false) const;
};

}  // namespace pygen

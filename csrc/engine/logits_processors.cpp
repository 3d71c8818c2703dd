// The processors are the fused kernel (pygen::logits_process), called as Python's LogitsProcessor
// calls it (pygen/generation/logits_process.py); the warpers mirror the transformers 5.23 classes
// named in their comments (generation/logits_process.py), ties included, as Python's warp() does.
#include "logits_processors.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/topk.h>

#include <limits>

#include "beam_search.h"

namespace pygen {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

at::Tensor ids_tensor(const std::vector<int64_t>& ids, const at::Tensor& like) {
  return at::tensor(ids, at::TensorOptions().dtype(at::kLong)).to(like.device());
}

// TopKLogitsWarper: keep scores >= the k-th largest.
at::Tensor apply_top_k(const at::Tensor& scores, int64_t k) {
  k = std::min(k, scores.size(1));
  const auto kth = std::get<0>(at::topk(scores, k)).narrow(1, k - 1, 1);
  return scores.masked_fill(scores < kth, -kInf);
}

// TopPLogitsWarper: drop the low tail whose cumulative probability is <= 1 - top_p.
at::Tensor apply_top_p(const at::Tensor& scores, double p, int64_t min_keep) {
  const auto [sorted, order] = at::sort(scores, /*dim=*/-1, /*descending=*/false);
  auto remove = at::softmax(sorted, -1).cumsum(-1) <= (1 - p);
  remove.narrow(1, remove.size(1) - min_keep, min_keep).fill_(false);
  return scores.masked_fill(remove.scatter(1, order, remove), -kInf);
}

}  // namespace

at::Tensor LogitsProcessors::operator()(const at::Tensor& sequences, const at::Tensor& logits,
                                        bool log_softmax) const {
  const bool on_device = has_generation_kernels(logits.device());
  const auto ids = on_device ? sequences : sequences.cpu();
  const int64_t cur_len = ids.size(1);
  // Which length-dependent processors act this step: MinLength bans every eos id, ForcedEOS (at
  // max_length - 1) wins over ForcedBOS (the first generated token).
  at::Tensor banned, forced;
  if (!eos_token_ids.empty() && cur_len < min_length) banned = ids_tensor(eos_token_ids, ids);
  if (!forced_eos_token_ids.empty() && cur_len == max_length - 1) {
    forced = ids_tensor(forced_eos_token_ids, ids);
  } else if (forced_bos_token_id && cur_len == 1) {
    forced = ids_tensor({*forced_bos_token_id}, ids);
  }
  auto scores = logits_process_op(on_device ? logits : logits.cpu(), ids, log_softmax, repetition_penalty,
                                  no_repeat_ngram_size, banned, forced)
                    .to(logits.device());
  if (sample) {
    if (temperature != 1.0) scores = scores / temperature;  // TemperatureLogitsWarper
    if (top_k > 0) scores = apply_top_k(scores, std::max(top_k, min_tokens_to_keep));
    if (top_p < 1.0) scores = apply_top_p(scores, top_p, min_tokens_to_keep);
  }
  return scores;
}

}  // namespace pygen

// Each step mirrors the transformers 5.23 class named in its comment (generation/logits_process.py),
// including its tie and edge-case behaviour, so that ids match token for token.
#include "logits_processors.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>

#include <limits>

namespace pygen {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

at::Tensor ids_tensor(const std::vector<int64_t>& ids, const at::Tensor& like) {
  return at::tensor(ids, at::TensorOptions().dtype(at::kLong)).to(like.device());
}

// RepetitionPenaltyLogitsProcessor: every id already in the row is divided (positive score) or
// multiplied (negative score) by the penalty, once.
at::Tensor apply_repetition_penalty(const at::Tensor& seqs, const at::Tensor& scores, double penalty) {
  const int64_t vocab = scores.size(1);
  const auto ids = seqs.clamp_max(vocab);  // ids past the output vocab land in a spare column
  const auto padded = at::constant_pad_nd(scores, {0, 1});
  const auto picked = padded.gather(1, ids);
  const auto penalized = at::where(picked < 0, picked * penalty, picked / penalty);
  return padded.scatter(1, ids, penalized).narrow(1, 0, vocab);
}

// NoRepeatNGramLogitsProcessor: ban the token that would complete an n-gram already in the row.
at::Tensor apply_no_repeat_ngram(const at::Tensor& seqs, const at::Tensor& scores, int64_t n) {
  const int64_t len = seqs.size(1), vocab = scores.size(1);
  if (len < n) return scores;
  const auto prefix = seqs.narrow(1, len + 1 - n, n - 1);
  const auto windows = seqs.unfold(1, n, 1);  // [rows, len - n + 1, n]
  const auto matches = windows.narrow(2, 0, n - 1).eq(prefix.unsqueeze(1)).all(-1);
  const auto last = windows.select(2, n - 1).clamp_max(vocab);
  auto banned = at::zeros({scores.size(0), vocab + 1}, scores.options().dtype(at::kBool));
  banned.scatter_(1, at::where(matches, last, at::full_like(last, vocab)), true);
  return scores.masked_fill(banned.narrow(1, 0, vocab), -kInf);
}

// ForcedBOS/ForcedEOS: the row becomes -inf except the forced ids, which become 0.
at::Tensor force(const at::Tensor& scores, const std::vector<int64_t>& ids) {
  auto out = at::full_like(scores, -kInf);
  out.index_fill_(1, ids_tensor(ids, scores), 0.0);
  return out;
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

at::Tensor LogitsProcessors::operator()(const at::Tensor& sequences, at::Tensor scores) const {
  const int64_t cur_len = sequences.size(1);
  if (repetition_penalty != 1.0) scores = apply_repetition_penalty(sequences, scores, repetition_penalty);
  if (no_repeat_ngram_size > 0) scores = apply_no_repeat_ngram(sequences, scores, no_repeat_ngram_size);
  if (min_length > 0 && !eos_token_ids.empty() && cur_len < min_length) {  // MinLengthLogitsProcessor
    scores = scores.index_fill(1, ids_tensor(eos_token_ids, scores), -kInf);
  }
  if (forced_bos_token_id && cur_len == 1) scores = force(scores, {*forced_bos_token_id});
  if (!forced_eos_token_ids.empty() && cur_len == max_length - 1) scores = force(scores, forced_eos_token_ids);
  if (sample) {
    if (temperature != 1.0) scores = scores / temperature;  // TemperatureLogitsWarper
    if (top_k > 0) scores = apply_top_k(scores, std::max(top_k, min_tokens_to_keep));
    if (top_p < 1.0) scores = apply_top_p(scores, top_p, min_tokens_to_keep);
  }
  return scores;
}

}  // namespace pygen

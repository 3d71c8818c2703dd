#include "beam_search.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/full.h>
#include <ATen/ops/isin.h>
#include <ATen/ops/multinomial.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/take_along_dim.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>

#include <cmath>

#include "generate.h"

namespace pygen {
namespace {

constexpr double kPenalty = -1.0e9;  // pushes a candidate out of every top-k

// transformers' _gather_beams: slices [B, K, ...] by per-item beam indices [B, K'].
at::Tensor gather_beams(const at::Tensor& t, at::Tensor index) {
  while (index.dim() < t.dim()) index = index.unsqueeze(-1);
  return at::take_along_dim(t, index, 1);
}

}  // namespace

BeamSearch::BeamSearch(const BeamSearchConfig& config, const at::Tensor& prompt) : c_(config) {
  const auto long_opts = prompt.options();
  const auto float_opts = long_opts.dtype(at::kFloat), bool_opts = long_opts.dtype(at::kBool);
  const int64_t n_eos = static_cast<int64_t>(c_.eos_token_ids.size());
  beams_to_keep_ = std::max<int64_t>(2, 1 + n_eos) * c_.beams;
  cur_len_ = c_.prompt_len;
  running_seqs_ = at::full({c_.batch, c_.beams, c_.max_length}, c_.fill_token, long_opts);
  running_seqs_.narrow(2, 0, cur_len_).copy_(prompt.view({c_.batch, c_.beams, cur_len_}));
  seqs_ = running_seqs_.clone();
  // Only the first beam starts live, so the beams do not all pick the same first tokens.
  running_scores_ = at::zeros({c_.batch, c_.beams}, float_opts);
  running_scores_.narrow(1, 1, c_.beams - 1).fill_(kPenalty);
  seq_scores_ = at::full({c_.batch, c_.beams}, kPenalty, float_opts);
  finished_ = at::zeros({c_.batch, c_.beams}, bool_opts);
  undone_ = at::ones({c_.batch, 1}, bool_opts);
  running_beams_ = at::full({c_.batch, c_.beams, c_.max_length - cur_len_}, -1, long_opts);
  seq_beams_ = running_beams_.clone();
  top_beams_mask_ = at::arange(beams_to_keep_, long_opts) < c_.beams;
  if (n_eos) eos_ = at::tensor(c_.eos_token_ids, at::TensorOptions().dtype(at::kLong)).to(prompt.device());
}

at::Tensor BeamSearch::running_sequences() const {
  return running_seqs_.narrow(2, 0, cur_len_).reshape({c_.batch * c_.beams, cur_len_});
}

at::Tensor BeamSearch::last_tokens() const {
  return running_seqs_.select(2, cur_len_ - 1).reshape({c_.batch * c_.beams});
}

at::Tensor BeamSearch::step(const at::Tensor& log_probs, std::optional<at::Generator> generator) {
  const int64_t B = c_.batch, K = c_.beams, V = c_.vocab, P = c_.prompt_len, len = cur_len_;
  // c. The top beams_to_keep continuations over all beams x vocab of each item.
  const auto scores = (log_probs.view({B, K, V}) + running_scores_.unsqueeze(-1)).view({B, K * V});
  at::Tensor top_scores, top_index;
  if (c_.sample) {
    const auto probs = at::softmax(scores, -1);
    top_index = draw([&] { return at::multinomial(probs.cpu(), beams_to_keep_, false, generator); })
                    .to(scores.device());
    top_scores = scores.gather(1, top_index);
  } else {
    std::tie(top_scores, top_index) = at::topk(scores, beams_to_keep_);
  }
  const auto parent = top_index.div(V, "floor");
  const auto tokens = top_index.remainder(V);
  auto top_seqs = gather_beams(running_seqs_, parent);
  top_seqs.select(2, len).copy_(tokens);
  auto top_beams = gather_beams(running_beams_, parent);
  top_beams.select(2, len - P).copy_(parent + at::arange(B, parent.options()).view({B, 1}) * K);

  // d. Which candidates finish: max_length reached or an eos token.
  auto hits = at::full({B, beams_to_keep_}, len + 1 >= c_.max_length, scores.options().dtype(at::kBool));
  if (eos_.defined()) hits = hits | at::isin(tokens, eos_);

  // e. The best unfinished candidates run on.
  const auto running_candidates = top_scores + hits.to(at::kFloat) * kPenalty;
  const auto next = std::get<1>(at::topk(running_candidates, K));
  running_seqs_ = gather_beams(top_seqs, next);
  running_scores_ = gather_beams(running_candidates, next);
  running_beams_ = gather_beams(top_beams, next);

  // f. Finished candidates among the first K compete with the finished hypotheses.
  const auto just_finished = hits & top_beams_mask_.unsqueeze(0);
  auto finished_scores = top_scores / std::pow(double(len + 1 - P), c_.length_penalty);
  if (c_.early_stopping == EarlyStopping::kTrue) {
    finished_scores = finished_scores + finished_.all(-1, true).to(at::kFloat) * kPenalty;
  }
  finished_scores = finished_scores + undone_.logical_not().to(at::kFloat) * kPenalty;
  finished_scores = finished_scores + just_finished.logical_not() * kPenalty;
  const auto merged_scores = at::cat({seq_scores_, finished_scores}, 1);
  const auto keep = std::get<1>(at::topk(merged_scores, K));
  seqs_ = gather_beams(at::cat({seqs_, top_seqs}, 1), keep);
  seq_scores_ = gather_beams(merged_scores, keep);
  seq_beams_ = gather_beams(at::cat({seq_beams_, top_beams}, 1), keep);
  finished_ = gather_beams(at::cat({finished_, just_finished}, 1), keep);

  // g. The cache rows the running beams continue, then the stopping condition.
  const auto parents = running_beams_.select(2, len - P).reshape({B * K});
  cur_len_ = len + 1;
  const int64_t best_len =
      c_.early_stopping == EarlyStopping::kNever && c_.length_penalty > 0 ? c_.max_length - P : cur_len_ - P;
  const auto best_possible = running_scores_.narrow(1, 0, 1) / std::pow(double(best_len), c_.length_penalty);
  const auto worst_finished =
      at::where(finished_, std::get<0>(seq_scores_.min(1, true)), at::full({}, kPenalty, seq_scores_.options()));
  undone_ = undone_ & (best_possible > worst_finished).any(-1, true);
  const bool can_improve = undone_.any().item<bool>();
  const bool all_finished = c_.early_stopping == EarlyStopping::kTrue && finished_.all().item<bool>();
  const bool can_continue = !hits.all().item<bool>();
  done_ = !(can_improve && !all_finished && can_continue);
  return parents;
}

std::pair<at::Tensor, at::Tensor> BeamSearch::result(int64_t num_return) const {
  const int64_t rows = c_.batch * num_return;
  const auto seqs = seqs_.narrow(1, 0, num_return).reshape({rows, c_.max_length});
  const auto scores = seq_scores_.narrow(1, 0, num_return).reshape({rows});
  const auto beams = seq_beams_.narrow(1, 0, num_return).reshape({rows, c_.max_length - c_.prompt_len});
  // Rows are cropped to the longest returned hypothesis (its beam indices are set, the rest -1).
  const int64_t generated = beams.ne(-1).sum(1).max().item<int64_t>();
  return {seqs.narrow(1, 0, c_.prompt_len + generated), scores};
}

}  // namespace pygen

#include "beam_search.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/full.h>
#include <ATen/ops/multinomial.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/empty.h>

#include "generate.h"

namespace pygen {
namespace {

constexpr float kBeamPenalty = -1.0e9f;  // transformers' initial score of the beams not started yet

// The C++ signatures of the schemas in csrc/ops.cpp, as the kernels register them.
using LogitsProcessFn = at::Tensor(const at::Tensor&, const at::Tensor&, bool, double,
                                   const std::optional<at::Tensor>&, int64_t, const std::optional<at::Tensor>&,
                                   int64_t, const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
                                   const std::optional<at::Tensor>&, const std::optional<at::Tensor>&);
using BeamTopkFn = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, int64_t);
using BeamUpdateFn = void(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                          const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                          const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                          const at::Tensor&, const std::optional<at::Tensor>&, int64_t, int64_t, double, int64_t);
using ReorderRowsFn = void(at::TensorList, const at::Tensor&, int64_t);

template <typename Fn>
const c10::TypedOperatorHandle<Fn>& op(const char* name) {
  // One handle per signature: every op here has its own.
  static const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name, "").template typed<Fn>();
  return handle;
}

const auto& logits_process_handle() { return op<LogitsProcessFn>("pygen::logits_process"); }
const auto& beam_topk_handle() { return op<BeamTopkFn>("pygen::beam_topk"); }
const auto& beam_update_handle() { return op<BeamUpdateFn>("pygen::beam_update_"); }
const auto& reorder_rows_handle() { return op<ReorderRowsFn>("pygen::reorder_rows_"); }

std::optional<at::Tensor> optional(const at::Tensor& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

int64_t early_stopping_arg(EarlyStopping e) {  // GenerationConfig.early_stopping as the kernels take it
  switch (e) {
    case EarlyStopping::kTrue: return 1;
    case EarlyStopping::kNever: return 2;
    case EarlyStopping::kHeuristic: break;
  }
  return 0;
}

}  // namespace

bool has_generation_kernels(c10::Device device) {
  return beam_update_handle().hasKernelForDispatchKey(c10::computeDispatchKey(at::kFloat, at::kStrided, device));
}

at::Tensor logits_process_op(const at::Tensor& logits, const at::Tensor& input_ids, bool log_softmax,
                             double repetition_penalty, int64_t no_repeat_ngram_size, const at::Tensor& banned,
                             const at::Tensor& forced) {
  return logits_process_handle().call(logits, input_ids, log_softmax, repetition_penalty, std::nullopt,
                                      no_repeat_ngram_size, std::nullopt, 0, std::nullopt, std::nullopt,
                                      optional(banned), optional(forced));
}

void reorder_rows_op(const std::vector<at::Tensor>& buffers, const at::Tensor& index, int64_t length) {
  reorder_rows_handle().call(buffers, index, length);
}

BeamSearch::BeamSearch(const BeamSearchConfig& config, const at::Tensor& prompt) : c_(config) {
  const int64_t B = c_.batch, K = c_.beams, L = c_.max_length, P = c_.prompt_len;
  const auto long_opts = prompt.options().dtype(at::kLong);
  const auto float_opts = long_opts.dtype(at::kFloat), bool_opts = long_opts.dtype(at::kBool);
  keep_ = std::max<int64_t>(2, 1 + int64_t(c_.eos_token_ids.size())) * K;
  cur_len_ = P;
  running_seqs_ = at::full({B, K, L}, c_.fill_token, long_opts);
  running_seqs_.narrow(2, 0, P).copy_(prompt.view({B, K, P}));
  running_scores_ = at::zeros({B, K}, float_opts);
  running_scores_.narrow(1, 1, K - 1).fill_(kBeamPenalty);  // all beams start identical: only the first expands
  running_beams_ = at::full({B, K, L - P}, -1, long_opts.dtype(at::kInt));
  seqs_ = running_seqs_.clone();
  seq_scores_ = at::full({B, K}, kBeamPenalty, float_opts);
  seq_beams_ = running_beams_.clone();
  finished_ = at::zeros({B, K}, bool_opts);
  undone_ = at::ones({B}, bool_opts);
  next_tokens_ = at::empty({B * K}, long_opts);
  parents_ = at::empty({B * K}, long_opts);
  done_flag_ = at::zeros({}, bool_opts);
  if (!c_.eos_token_ids.empty()) eos_ = at::tensor(c_.eos_token_ids, at::kLong).to(prompt.device());
}

at::Tensor BeamSearch::running_sequences() const {
  return running_seqs_.view({c_.batch * c_.beams, c_.max_length}).narrow(1, 0, cur_len_);
}

void BeamSearch::step(const at::Tensor& processed, std::optional<at::Generator> generator) {
  const int64_t B = c_.batch, K = c_.beams;
  const auto log_probs = processed.to(running_scores_.device());
  at::Tensor cand_scores, cand_ids;
  if (c_.sample) {  // sample the candidates (without replacement) instead of taking the top ones
    const auto total = (log_probs.view({B, K, -1}) + running_scores_.unsqueeze(-1)).view({B, -1});
    const auto probs = at::softmax(total, -1);
    cand_ids = draw([&] { return at::multinomial(probs.cpu(), keep_, false, generator); }).to(total.device());
    cand_scores = total.gather(1, cand_ids);
  } else {
    std::tie(cand_scores, cand_ids) = beam_topk_handle().call(log_probs, running_scores_, keep_);
  }
  beam_update_handle().call(cand_scores, cand_ids, running_seqs_, running_scores_, running_beams_, seqs_,
                            seq_scores_, seq_beams_, finished_, undone_, next_tokens_, parents_, done_flag_,
                            optional(eos_), c_.vocab, cur_len_, c_.length_penalty,
                            early_stopping_arg(c_.early_stopping));
  ++cur_len_;
  done_ = cur_len_ >= c_.max_length || done_flag_.item<bool>();
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

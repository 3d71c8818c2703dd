// Device-neutral part of the generation kernels: argument validation, the per-step scalars, the
// Meta implementations, and the CPU registration.
#include "beam_search.h"

#include <torch/library.h>

#include <cmath>

namespace pygen {
namespace {

void check_ids(const at::Tensor& t, const char* name, int64_t dims, const at::Device& device) {
  TORCH_CHECK_VALUE(t.scalar_type() == at::kLong, name, " must be int64, got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == dims, name, " must be ", dims, "-D, got shape ", t.sizes());
  TORCH_CHECK_VALUE(t.device() == device, name, " is on ", t.device(), ", expected ", device);
  if (dims > 0) TORCH_CHECK_VALUE(t.stride(dims - 1) == 1, name, ": last dim must be contiguous");
}

at::Tensor defined_or_empty(const std::optional<at::Tensor>& t) { return t ? *t : at::Tensor(); }

void check_state(const at::Tensor& t, const char* name, at::ScalarType dtype, at::IntArrayRef shape,
                 const at::Device& device) {
  TORCH_CHECK_VALUE(t.scalar_type() == dtype, "beam_update: ", name, " must be ", dtype, ", got ",
                    t.scalar_type());
  TORCH_CHECK_VALUE(t.sizes() == shape, "beam_update: ", name, " must have shape ", shape, ", got ", t.sizes());
  TORCH_CHECK_VALUE(t.device() == device, "beam_update: ", name, " is on ", t.device(), ", expected ", device);
  TORCH_CHECK_VALUE(t.is_contiguous(), "beam_update: ", name, " must be contiguous");
}

}  // namespace

LogitsProcessArgs check_logits_process(
    const at::Tensor& logits, const at::Tensor& input_ids, bool log_softmax, double repetition_penalty,
    const std::optional<at::Tensor>& penalty_start, int64_t no_repeat_ngram_size,
    const std::optional<at::Tensor>& source_ids, int64_t encoder_no_repeat_ngram_size,
    const std::optional<at::Tensor>& bad_words, const std::optional<at::Tensor>& bad_word_offsets,
    const std::optional<at::Tensor>& banned, const std::optional<at::Tensor>& forced) {
  TORCH_CHECK_VALUE(logits.dim() == 2, "logits_process: logits must be [rows, vocab], got ", logits.sizes());
  TORCH_CHECK_VALUE(at::isFloatingType(logits.scalar_type()), "logits_process: logits must be floating point");
  TORCH_CHECK_VALUE(logits.stride(1) == 1 || logits.size(1) <= 1, "logits_process: vocab dim must be contiguous");
  const auto device = logits.device();
  const int64_t rows = logits.size(0);
  check_ids(input_ids, "logits_process: input_ids", 2, device);
  TORCH_CHECK_VALUE(input_ids.size(0) == rows, "logits_process: input_ids has ", input_ids.size(0),
                    " rows, logits ", rows);
  TORCH_CHECK_VALUE(std::isfinite(repetition_penalty) && repetition_penalty > 0,
                    "logits_process: repetition_penalty must be > 0, got ", repetition_penalty);
  TORCH_CHECK_VALUE(no_repeat_ngram_size >= 0 && encoder_no_repeat_ngram_size >= 0,
                    "logits_process: n-gram sizes must be >= 0");
  if (penalty_start) {
    check_ids(*penalty_start, "logits_process: penalty_start", 1, device);
    TORCH_CHECK_VALUE(penalty_start->size(0) == rows, "logits_process: penalty_start must have ", rows, " rows");
  }
  if (encoder_no_repeat_ngram_size > 0) {
    TORCH_CHECK_VALUE(source_ids.has_value(), "logits_process: encoder_no_repeat_ngram_size needs source_ids");
    check_ids(*source_ids, "logits_process: source_ids", 2, device);
    TORCH_CHECK_VALUE(source_ids->size(0) > 0 && rows % source_ids->size(0) == 0, "logits_process: ", rows,
                      " rows are not a multiple of ", source_ids->size(0), " source rows");
  }
  TORCH_CHECK_VALUE(bad_words.has_value() == bad_word_offsets.has_value(),
                    "logits_process: bad_words and bad_word_offsets go together");
  if (bad_words) {
    check_ids(*bad_words, "logits_process: bad_words", 1, device);
    check_ids(*bad_word_offsets, "logits_process: bad_word_offsets", 1, device);
    TORCH_CHECK_VALUE(bad_word_offsets->size(0) >= 1, "logits_process: bad_word_offsets must not be empty");
  }
  if (banned) check_ids(*banned, "logits_process: banned", 1, device);
  if (forced) check_ids(*forced, "logits_process: forced", 1, device);
  return {logits, input_ids, log_softmax, repetition_penalty, defined_or_empty(penalty_start),
          no_repeat_ngram_size, encoder_no_repeat_ngram_size > 0 ? *source_ids : at::Tensor(),
          encoder_no_repeat_ngram_size, defined_or_empty(bad_words), defined_or_empty(bad_word_offsets),
          defined_or_empty(banned), defined_or_empty(forced)};
}

BeamState check_beam_state(const at::Tensor& running_seqs, const at::Tensor& running_scores,
                           const at::Tensor& running_beams, const at::Tensor& seqs, const at::Tensor& seq_scores,
                           const at::Tensor& seq_beams, const at::Tensor& finished, const at::Tensor& undone,
                           const at::Tensor& next_tokens, const at::Tensor& parents, const at::Tensor& done) {
  TORCH_CHECK_VALUE(running_seqs.dim() == 3, "beam_update: running_seqs must be [batch, beams, max_length], got ",
                    running_seqs.sizes());
  const int64_t b = running_seqs.size(0), nb = running_seqs.size(1), len = running_seqs.size(2);
  TORCH_CHECK_VALUE(running_beams.dim() == 3 && running_beams.size(2) <= len,
                    "beam_update: running_beams must be [batch, beams, max_length - prompt_len]");
  const int64_t generated = running_beams.size(2);
  const auto device = running_seqs.device();
  check_state(running_seqs, "running_seqs", at::kLong, {b, nb, len}, device);
  check_state(running_scores, "running_scores", at::kFloat, {b, nb}, device);
  check_state(running_beams, "running_beams", at::kInt, {b, nb, generated}, device);
  check_state(seqs, "seqs", at::kLong, {b, nb, len}, device);
  check_state(seq_scores, "seq_scores", at::kFloat, {b, nb}, device);
  check_state(seq_beams, "seq_beams", at::kInt, {b, nb, generated}, device);
  check_state(finished, "finished", at::kBool, {b, nb}, device);
  check_state(undone, "undone", at::kBool, {b}, device);
  check_state(next_tokens, "next_tokens", at::kLong, {b * nb}, device);
  check_state(parents, "parents", at::kLong, {b * nb}, device);
  check_state(done, "done", at::kBool, {}, device);
  return {running_seqs, running_scores, running_beams, seqs, seq_scores, seq_beams, finished, undone,
          next_tokens, parents, done, b, nb, len, len - generated};
}

BeamStep make_beam_step(const BeamState& s, int64_t vocab, int64_t cur_len, double length_penalty,
                        int64_t early_stopping) {
  TORCH_CHECK_VALUE(early_stopping >= kEarlyFalse && early_stopping <= kEarlyNever,
                    "beam_update: early_stopping must be 0 (False), 1 (True) or 2 ('never')");
  TORCH_CHECK_VALUE(cur_len >= s.prompt_len && cur_len < s.max_length, "beam_update: cur_len ", cur_len,
                    " must be in [prompt_len ", s.prompt_len, ", max_length ", s.max_length, ")");
  TORCH_CHECK_VALUE(std::isfinite(length_penalty), "beam_update: length_penalty must be finite");
  // transformers divides float32 scores by a Python float: the power is taken in double and the
  // quotient rounded to float32.
  const double finish_len = double(cur_len + 1 - s.prompt_len);
  const double best_len = (early_stopping == kEarlyNever && length_penalty > 0.0)
                              ? double(s.max_length - s.prompt_len) : finish_len;
  return {vocab, cur_len, early_stopping, float(length_penalty), float(std::pow(finish_len, length_penalty)),
          float(std::pow(best_len, length_penalty))};
}

void check_beam_candidates(const BeamState& s, const at::Tensor& cand_scores, const at::Tensor& cand_ids,
                           const std::optional<at::Tensor>& eos_ids, int64_t vocab, int64_t cur_len) {
  TORCH_CHECK_VALUE(cand_scores.dim() == 2 && cand_scores.size(0) == s.batch && cand_scores.size(1) >= s.beams,
                    "beam_update: cand_scores must be [batch, k >= beams], got ", cand_scores.sizes());
  check_state(cand_scores, "cand_scores", at::kFloat, cand_scores.sizes(), s.running_seqs.device());
  check_state(cand_ids, "cand_ids", at::kLong, cand_scores.sizes(), s.running_seqs.device());
  TORCH_CHECK_VALUE(vocab >= 1, "beam_update: vocab must be >= 1");
  if (eos_ids) check_ids(*eos_ids, "beam_update: eos_ids", 1, s.running_seqs.device());
}

void check_beam_topk(const at::Tensor& scores, const at::Tensor& beam_scores, int64_t k) {
  TORCH_CHECK_VALUE(beam_scores.dim() == 2 && beam_scores.scalar_type() == at::kFloat && beam_scores.is_contiguous(),
                    "beam_topk: beam_scores must be a contiguous float32 [batch, beams] tensor");
  const int64_t rows = beam_scores.size(0) * beam_scores.size(1);
  TORCH_CHECK_VALUE(scores.dim() == 2 && scores.size(0) == rows && scores.scalar_type() == at::kFloat,
                    "beam_topk: scores must be float32 [", rows, ", vocab], got ", scores.scalar_type(), " ",
                    scores.sizes());
  TORCH_CHECK_VALUE(scores.stride(1) == 1, "beam_topk: the vocab dim of scores must be contiguous");
  TORCH_CHECK_VALUE(scores.device() == beam_scores.device(), "beam_topk: scores and beam_scores are on ",
                    scores.device(), " and ", beam_scores.device());
  TORCH_CHECK_VALUE(k >= 1 && k <= beam_scores.size(1) * scores.size(1), "beam_topk: k must be in [1, ",
                    beam_scores.size(1) * scores.size(1), "], got ", k);
}

void check_reorder_rows(const std::vector<at::Tensor>& buffers, const at::Tensor& index, int64_t length) {
  TORCH_CHECK_VALUE(index.dim() == 1 && index.scalar_type() == at::kLong && index.is_contiguous(),
                    "reorder_rows: index must be a contiguous 1-D int64 tensor");
  for (const auto& buf : buffers) {
    TORCH_CHECK_VALUE(buf.dim() >= 2 && buf.size(0) == index.size(0), "reorder_rows: buffers must be [",
                      index.size(0), ", capacity, ...], got ", buf.sizes());
    TORCH_CHECK_VALUE(buf.is_contiguous(), "reorder_rows: buffers must be contiguous");
    TORCH_CHECK_VALUE(buf.device() == index.device(), "reorder_rows: a buffer is on ", buf.device(),
                      ", index on ", index.device());
    TORCH_CHECK_VALUE(length >= 0 && length <= buf.size(1), "reorder_rows: length ", length,
                      " exceeds the capacity ", buf.size(1));
  }
}

namespace {

at::Tensor logits_process_meta(
    const at::Tensor& logits, const at::Tensor& input_ids, bool log_softmax, double repetition_penalty,
    const std::optional<at::Tensor>& penalty_start, int64_t no_repeat_ngram_size,
    const std::optional<at::Tensor>& source_ids, int64_t encoder_no_repeat_ngram_size,
    const std::optional<at::Tensor>& bad_words, const std::optional<at::Tensor>& bad_word_offsets,
    const std::optional<at::Tensor>& banned, const std::optional<at::Tensor>& forced) {
  check_logits_process(logits, input_ids, log_softmax, repetition_penalty, penalty_start, no_repeat_ngram_size,
                       source_ids, encoder_no_repeat_ngram_size, bad_words, bad_word_offsets, banned, forced);
  return at::empty(logits.sizes(), logits.options().dtype(at::kFloat));
}

std::tuple<at::Tensor, at::Tensor> beam_topk_meta(const at::Tensor& scores, const at::Tensor& beam_scores,
                                                  int64_t k) {
  check_beam_topk(scores, beam_scores, k);
  const int64_t batch = beam_scores.size(0);
  return {at::empty({batch, k}, scores.options().dtype(at::kFloat)),
          at::empty({batch, k}, scores.options().dtype(at::kLong))};
}

void beam_update_meta(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                      const at::Tensor&, const std::optional<at::Tensor>&, int64_t, int64_t, double, int64_t) {}

void reorder_rows_meta(at::TensorList, const at::Tensor&, int64_t) {}

}  // namespace

TORCH_LIBRARY_IMPL(pygen, Meta, m) {
  m.impl("logits_process", &logits_process_meta);
  m.impl("beam_topk", &beam_topk_meta);
  m.impl("beam_update_", &beam_update_meta);
  m.impl("reorder_rows_", &reorder_rows_meta);
}

TORCH_LIBRARY_IMPL(pygen, CPU, m) {
  m.impl("logits_process", &logits_process_cpu);
  m.impl("beam_topk", &beam_topk_cpu);
  m.impl("beam_update_", &beam_update_cpu);
  m.impl("reorder_rows_", &reorder_rows_cpu);
}

}  // namespace pygen

// Generation kernels: logits processors, beam-search top-k and bookkeeping, KV-cache row reorder.
// Semantics are transformers 5.23's (generation/utils.py _beam_search, logits_process.py); the
// Python references in pygen/ops/beam_search.py spell them out in plain torch.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <tuple>
#include <vector>

namespace pygen {

// Finished-hypothesis bookkeeping constants of transformers' vectorised beam search.
constexpr float kBeamPenalty = -1.0e9f;  // added to scores to push candidates out of a top-k

// early_stopping of GenerationConfig, as an int for the kernels.
enum EarlyStopping : int64_t { kEarlyFalse = 0, kEarlyTrue = 1, kEarlyNever = 2 };

// Arguments of logits_process, validated by check_logits_process(). Optional tensors are
// undefined when the processor is off.
struct LogitsProcessArgs {
  at::Tensor logits;          // [R, V] any float dtype, last dim contiguous
  at::Tensor input_ids;       // [R, T] int64, last dim contiguous: the sequences so far
  bool log_softmax;           // replace each row by its log-softmax first (beam search)
  double repetition_penalty;  // 1.0 = off
  at::Tensor penalty_start;   // [R] int64: positions before it are left padding, not penalised
  int64_t no_repeat_ngram_size;
  at::Tensor source_ids;      // [R / group, S] int64 for encoder_no_repeat_ngram_size
  int64_t encoder_no_repeat_ngram_size;
  at::Tensor bad_words;       // flat int64 ids of all bad words
  at::Tensor bad_word_offsets;  // [n + 1] int64 (host), word i = bad_words[off[i]:off[i+1]]
  at::Tensor banned;          // int64 ids set to -inf (min_length not reached yet)
  at::Tensor forced;          // int64 ids: the row becomes -inf except these, which become 0
};

LogitsProcessArgs check_logits_process(
    const at::Tensor& logits, const at::Tensor& input_ids, bool log_softmax, double repetition_penalty,
    const std::optional<at::Tensor>& penalty_start, int64_t no_repeat_ngram_size,
    const std::optional<at::Tensor>& source_ids, int64_t encoder_no_repeat_ngram_size,
    const std::optional<at::Tensor>& bad_words, const std::optional<at::Tensor>& bad_word_offsets,
    const std::optional<at::Tensor>& banned, const std::optional<at::Tensor>& forced);

// State of a batch of beam searches; all tensors on one device, updated in place.
struct BeamState {
  at::Tensor running_seqs;    // [B, nb, L] int64
  at::Tensor running_scores;  // [B, nb] float32
  at::Tensor running_beams;   // [B, nb, L - P] int32 (beam_indices of the running beams)
  at::Tensor seqs;            // [B, nb, L] int64 finished hypotheses
  at::Tensor seq_scores;      // [B, nb] float32
  at::Tensor seq_beams;       // [B, nb, L - P] int32
  at::Tensor finished;        // [B, nb] bool
  at::Tensor undone;          // [B] bool: the early-stop heuristic says the item can still improve
  at::Tensor next_tokens;     // [B * nb] int64 out: the tokens the running beams feed next
  at::Tensor parents;         // [B * nb] int64 out: the cache row each running beam continues
  at::Tensor done;            // [] bool: the search is over (the op is then a no-op)
  int64_t batch, beams, max_length, prompt_len;
};

BeamState check_beam_state(const at::Tensor& running_seqs, const at::Tensor& running_scores,
                           const at::Tensor& running_beams, const at::Tensor& seqs, const at::Tensor& seq_scores,
                           const at::Tensor& seq_beams, const at::Tensor& finished, const at::Tensor& undone,
                           const at::Tensor& next_tokens, const at::Tensor& parents, const at::Tensor& done);

// Per-step scalars of beam_update, derived on the host once so that every device rounds alike.
struct BeamStep {
  int64_t vocab, cur_len, early_stopping;
  float length_penalty;
  float finish_denom;  // (cur_len + 1 - P) ** length_penalty, as float
  float best_denom;    // the early-stop heuristic's denominator, as float
};

BeamStep make_beam_step(const BeamState& s, int64_t vocab, int64_t cur_len, double length_penalty,
                        int64_t early_stopping);

void check_beam_candidates(const BeamState& s, const at::Tensor& cand_scores, const at::Tensor& cand_ids,
                           const std::optional<at::Tensor>& eos_ids, int64_t vocab, int64_t cur_len);

void check_beam_topk(const at::Tensor& scores, const at::Tensor& beam_scores, int64_t k);

void check_reorder_rows(const std::vector<at::Tensor>& buffers, const at::Tensor& index, int64_t length);

// CPU implementations (beam_search_cpu.cpp).
at::Tensor logits_process_cpu(
    const at::Tensor& logits, const at::Tensor& input_ids, bool log_softmax, double repetition_penalty,
    const std::optional<at::Tensor>& penalty_start, int64_t no_repeat_ngram_size,
    const std::optional<at::Tensor>& source_ids, int64_t encoder_no_repeat_ngram_size,
    const std::optional<at::Tensor>& bad_words, const std::optional<at::Tensor>& bad_word_offsets,
    const std::optional<at::Tensor>& banned, const std::optional<at::Tensor>& forced);

std::tuple<at::Tensor, at::Tensor> beam_topk_cpu(const at::Tensor& scores, const at::Tensor& beam_scores, int64_t k);

void beam_update_cpu(const at::Tensor& cand_scores, const at::Tensor& cand_ids, const at::Tensor& running_seqs,
                     const at::Tensor& running_scores, const at::Tensor& running_beams, const at::Tensor& seqs,
                     const at::Tensor& seq_scores, const at::Tensor& seq_beams, const at::Tensor& finished,
                     const at::Tensor& undone, const at::Tensor& next_tokens, const at::Tensor& parents,
                     const at::Tensor& done, const std::optional<at::Tensor>& eos_ids, int64_t vocab,
                     int64_t cur_len, double length_penalty, int64_t early_stopping);

void reorder_rows_cpu(at::TensorList buffers, const at::Tensor& index, int64_t length);

}  // namespace pygen

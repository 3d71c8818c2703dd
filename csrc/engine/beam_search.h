// Beam search and the logits processors of the C++ engine, on the generation kernels
// (csrc/kernels/beam_search*, schemas in csrc/ops.cpp) that Python's generate() runs: the loop in
// generate.cpp is pygen/generation/search.py's, step by step, so both give the same ids.
#pragma once
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "pygen/generation_options.h"

namespace pygen {

// ---- the kernels, through the dispatcher (which picks the CPU or CUDA implementation) ----------
// Whether the generation kernels are registered for a device (CUDA only in a PYGEN_CUDA build).
bool has_generation_kernels(c10::Device device);
// pygen::logits_process without the processors the engine does not offer (bad words, encoder
// n-grams, penalty_start); banned / forced are undefined when off.
at::Tensor logits_process_op(const at::Tensor& logits, const at::Tensor& input_ids, bool log_softmax,
                             double repetition_penalty, int64_t no_repeat_ngram_size, const at::Tensor& banned,
                             const at::Tensor& forced);
// pygen::reorder_rows_: row i of every buffer [R, capacity, ...] takes positions [0, length) of row index[i].
void reorder_rows_op(const std::vector<at::Tensor>& buffers, const at::Tensor& index, int64_t length);

struct BeamSearchConfig {
  int64_t batch = 0, beams = 0, vocab = 0, max_length = 0, prompt_len = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
  std::vector<int64_t> eos_token_ids;
  int64_t fill_token = -1;  // what unwritten positions hold (transformers' output_fill_value)
  bool sample = false;      // beam sampling: candidates are drawn, not taken top-k
};

// The state of pygen::beam_update_ (BeamState in csrc/kernels/beam_search.h), on one device.
class BeamSearch {
 public:
  // prompt: [batch * beams, prompt_len] int64, the decoder prompt of every beam; the state lives
  // on its device, which must have the generation kernels.
  BeamSearch(const BeamSearchConfig& config, const at::Tensor& prompt);

  // The search is over: max_length reached or the kernel's done flag set (read on the host).
  bool done() const { return done_; }
  // [batch * beams, cur_len]: the running beams, as the logits processors see them.
  at::Tensor running_sequences() const;
  // [batch * beams]: the tokens the running beams feed the decoder next.
  at::Tensor next_tokens() const { return next_tokens_; }
  // [batch * beams]: the cache row each running beam continues (reorder the KV cache with it).
  at::Tensor parents() const { return parents_; }

  // One step on the processed log-probs [batch * beams, vocab] of the running beams: the
  // candidates (pygen::beam_topk, or a multinomial draw when sampling), then pygen::beam_update_.
  void step(const at::Tensor& log_probs, std::optional<at::Generator> generator);

  // The best num_return hypotheses of every item, cropped as transformers crops them:
  // sequences [batch * num_return, len] and sequences_scores [batch * num_return].
  std::pair<at::Tensor, at::Tensor> result(int64_t num_return) const;

 private:
  BeamSearchConfig c_;
  int64_t keep_;  // candidates per item: enough that the beams never all stop
  int64_t cur_len_;
  bool done_ = false;
  at::Tensor running_seqs_, running_scores_, running_beams_;  // [B, K, L] int64, [B, K] f32, [B, K, L - P] i32
  at::Tensor seqs_, seq_scores_, seq_beams_, finished_;       // finished hypotheses, same shapes; bool
  at::Tensor undone_;                                          // [B] bool
  at::Tensor next_tokens_, parents_;                           // [B * K] int64
  at::Tensor done_flag_;                                       // [] bool
  at::Tensor eos_;                                             // [n_eos] int64 or undefined
};

}  // namespace pygen

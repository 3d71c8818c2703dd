// transformers 5.23's vectorised beam search (generation/utils.py, _beam_search and helpers):
// the running beams, the finished hypotheses, the early-stop heuristic. step() is the whole
// per-token bookkeeping, kept in one function so that a device kernel can replace it.
#pragma once
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "pygen/generation_options.h"

namespace pygen {

struct BeamSearchConfig {
  int64_t batch = 0, beams = 0, vocab = 0, max_length = 0, prompt_len = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
  std::vector<int64_t> eos_token_ids;
  int64_t fill_token = -1;  // what unwritten positions hold (transformers' output_fill_value)
  bool sample = false;      // beam sampling: candidates are drawn, not taken top-k
};

class BeamSearch {
 public:
  // prompt: [batch * beams, prompt_len] int64, the decoder prompt of every beam.
  BeamSearch(const BeamSearchConfig& config, const at::Tensor& prompt);

  int64_t cur_len() const { return cur_len_; }
  bool done() const { return done_; }
  // [batch * beams, cur_len]: the running beams, as the logits processors see them.
  at::Tensor running_sequences() const;
  // [batch * beams]: the newest token of every running beam, fed to the decoder next.
  at::Tensor last_tokens() const;

  // Consumes the processed log-probs [batch * beams, vocab] of the running beams; returns the
  // parent row each running beam continues (reorder the KV cache with it).
  at::Tensor step(const at::Tensor& log_probs, std::optional<at::Generator> generator);

  // The best num_return hypotheses of every item, cropped as transformers crops them:
  // sequences [batch * num_return, len] and sequences_scores [batch * num_return].
  std::pair<at::Tensor, at::Tensor> result(int64_t num_return) const;

 private:
  BeamSearchConfig c_;
  int64_t beams_to_keep_;
  int64_t cur_len_;
  bool done_ = false;
  at::Tensor running_seqs_, running_scores_, running_beams_;  // [B, K, L], [B, K], [B, K, L - P]
  at::Tensor seqs_, seq_scores_, seq_beams_, finished_;       // finished hypotheses, same shapes
  at::Tensor undone_;          // [B, 1] the early-stop heuristic still sees room to improve
  at::Tensor top_beams_mask_;  // [beams_to_keep]: the first `beams` candidates may finish
  at::Tensor eos_;             // [n_eos] or undefined
};

}  // namespace pygen

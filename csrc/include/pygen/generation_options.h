// Options and result of Model::generate(). The options carry transformers' generate() names and
// meaning (transformers 5.23 is the reference); an unset option takes the model's
// generation_config.json value, then transformers' global default.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace pygen {

// transformers' three-valued early_stopping for beam search.
enum class EarlyStopping {
  kHeuristic,  // early_stopping=False: stop when the best running beam is unlikely to improve
  kTrue,       // early_stopping=True: stop as soon as num_beams hypotheses are finished
  kNever,      // early_stopping="never": canonical beam search, stop only when nothing can improve
};

struct GenerationOptions {
  // Lengths count the decoder prompt (the decoder start token), as in transformers.
  std::optional<int64_t> max_length;      // default 20 + 1, capped by max_position_embeddings
  std::optional<int64_t> max_new_tokens;  // takes precedence over max_length
  std::optional<int64_t> min_length;
  std::optional<int64_t> min_new_tokens;  // takes precedence over min_length

  // Strategy: greedy (num_beams 1), beam search (num_beams > 1), sampling (do_sample), beam sampling.
  std::optional<int64_t> num_beams;
  std::optional<bool> do_sample;
  std::optional<int64_t> num_return_sequences;
  std::optional<EarlyStopping> early_stopping;
  std::optional<double> length_penalty;

  // Logits processing.
  std::optional<double> repetition_penalty;
  std::optional<int64_t> no_repeat_ngram_size;
  std::optional<double> temperature;  // sampling only, as the top_k/top_p warpers
  std::optional<int64_t> top_k;
  std::optional<double> top_p;

  // Special tokens.
  std::optional<int64_t> forced_bos_token_id;  // forced as the first generated token
  std::optional<std::vector<int64_t>> forced_eos_token_id;  // forced at max_length - 1
  std::optional<std::vector<int64_t>> eos_token_id;  // any of them ends a sequence
  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> decoder_start_token_id;

  // Sampling draws from a generator of its own seeded with this (the same stream as
  // torch.manual_seed(seed) on the CPU); unset = a fresh random seed per call.
  std::optional<uint64_t> seed;
};

struct GenerationResult {
  // batch x num_return_sequences rows (the rows of one input are adjacent, best first), each
  // starting with the decoder start token and padded to one length with the pad token: exactly
  // the tensor transformers' generate() returns.
  std::vector<std::vector<int64_t>> sequences;
  // One score per row. Beam search: transformers' sequences_scores (sum of the token log-probs
  // divided by generated_length ** length_penalty). Greedy and sampling: the sum of the
  // log-probabilities of the generated tokens (up to and including eos) under the processed
  // distribution the token was chosen from.
  std::vector<float> scores;
};

}  // namespace pygen

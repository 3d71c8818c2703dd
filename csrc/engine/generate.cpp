#include "generate.h"

#include <ATen/TensorOperators.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/argmax.h>
#include <ATen/ops/full.h>
#include <ATen/ops/isin.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/multinomial.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>

#include <functional>
#include <random>

#include "beam_search.h"
#include "logits_processors.h"
#include "pygen/error.h"

namespace pygen {
namespace {

// Every option resolved: the caller's value, else the checkpoint's, else transformers' default.
struct Settings {
  int64_t max_length = 0, min_length = 0, num_beams = 1, num_return_sequences = 1;
  int64_t positions = 0;  // the decoder's position table
  bool do_sample = false;
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
  double length_penalty = 1.0;
  std::vector<int64_t> eos;
  std::optional<int64_t> pad;
  int64_t decoder_start = 0;
  uint64_t seed = 0;
  LogitsProcessors processors;
};

template <typename T>
std::optional<T> either(const std::optional<T>& user, const std::optional<T>& model) {
  return user ? user : model;
}

void check_token(int64_t id, const char* name, int64_t vocab) {
  if (id < 0 || id >= vocab) {
    throw GenerationError(std::string(name) + " " + std::to_string(id) + " is outside the vocabulary [0, " +
                          std::to_string(vocab) + ")");
  }
}

Settings resolve(const GenerationOptions& user, const LoadedModel& model) {
  const GenerationOptions& def = model.generation_defaults;
  const int64_t vocab = model.info.vocab_size;
  constexpr int64_t prompt_len = 1;  // the decoder start token
  Settings s;

  if (const auto max_new = either(user.max_new_tokens, def.max_new_tokens)) {
    if (*max_new <= 0) throw GenerationError("max_new_tokens must be > 0, got " + std::to_string(*max_new));
    if (__builtin_add_overflow(*max_new, prompt_len, &s.max_length)) {
      throw GenerationError("max_new_tokens " + std::to_string(*max_new) + " overflows the sequence length");
    }
  } else if (const auto max_length = either(user.max_length, def.max_length)) {
    s.max_length = *max_length;
  } else {  // transformers: 20 new tokens, capped by the model's positions
    s.max_length = 20 + prompt_len;
    if (model.max_position_embeddings) s.max_length = std::min(s.max_length, *model.max_position_embeddings);
  }
  if (s.max_length <= prompt_len) {
    throw GenerationError("max_length is " + std::to_string(s.max_length) +
                          ", but the decoder prompt already has 1 token: increase max_length or set max_new_tokens");
  }
  // As transformers (and the Python package): a max_length past the decoder's position table only
  // fails if a sequence is still running when the table ends (the loops check).
  s.positions = model.info.max_target_positions;
  if (const auto min_new = either(user.min_new_tokens, def.min_new_tokens)) {
    if (*min_new < 0) throw GenerationError("min_new_tokens must be >= 0, got " + std::to_string(*min_new));
    s.min_length = std::min(*min_new, s.max_length) + prompt_len;  // past max_length it only bans eos
  } else {
    s.min_length = either(user.min_length, def.min_length).value_or(0);
  }
  if (s.min_length < 0) throw GenerationError("min_length must be >= 0");

  s.num_beams = either(user.num_beams, def.num_beams).value_or(1);
  s.do_sample = either(user.do_sample, def.do_sample).value_or(false);
  s.num_return_sequences = either(user.num_return_sequences, def.num_return_sequences).value_or(1);
  s.early_stopping = either(user.early_stopping, def.early_stopping).value_or(EarlyStopping::kHeuristic);
  s.length_penalty = either(user.length_penalty, def.length_penalty).value_or(1.0);
  if (s.num_beams < 1) throw GenerationError("num_beams must be >= 1, got " + std::to_string(s.num_beams));
  if (s.num_return_sequences < 1) throw GenerationError("num_return_sequences must be >= 1");
  if (s.num_beams == 1 && !s.do_sample && s.num_return_sequences > 1) {
    throw GenerationError("greedy search returns one sequence per input: num_return_sequences must be 1 "
                          "(use beam search or sampling)");
  }
  if (s.num_beams > 1 && s.num_return_sequences > s.num_beams) {
    throw GenerationError("num_return_sequences (" + std::to_string(s.num_return_sequences) +
                          ") must be <= num_beams (" + std::to_string(s.num_beams) + ")");
  }
  if (!std::isfinite(s.length_penalty)) throw GenerationError("length_penalty must be finite");

  s.eos = either(user.eos_token_id, def.eos_token_id).value_or(std::vector<int64_t>{});
  for (int64_t id : s.eos) check_token(id, "eos_token_id", vocab);
  s.pad = either(user.pad_token_id, def.pad_token_id);
  if (!s.pad && !s.eos.empty()) s.pad = s.eos[0];
  if (s.pad) check_token(*s.pad, "pad_token_id", vocab);
  const auto start = either(user.decoder_start_token_id, def.decoder_start_token_id);
  const auto bos = either(user.bos_token_id, def.bos_token_id);
  if (!start && !bos) {
    throw GenerationError("decoder_start_token_id or bos_token_id has to be defined for encoder-decoder generation");
  }
  s.decoder_start = start ? *start : *bos;
  check_token(s.decoder_start, "decoder_start_token_id", vocab);

  LogitsProcessors& p = s.processors;
  p.repetition_penalty = either(user.repetition_penalty, def.repetition_penalty).value_or(1.0);
  if (!(p.repetition_penalty > 0) || !std::isfinite(p.repetition_penalty)) {
    throw GenerationError("repetition_penalty must be a positive number");
  }
  p.no_repeat_ngram_size = either(user.no_repeat_ngram_size, def.no_repeat_ngram_size).value_or(0);
  if (p.no_repeat_ngram_size < 0) throw GenerationError("no_repeat_ngram_size must be >= 0");
  p.min_length = s.min_length;
  p.eos_token_ids = s.eos;
  p.forced_bos_token_id = either(user.forced_bos_token_id, def.forced_bos_token_id);
  if (p.forced_bos_token_id) check_token(*p.forced_bos_token_id, "forced_bos_token_id", vocab);
  p.forced_eos_token_ids = either(user.forced_eos_token_id, def.forced_eos_token_id).value_or(std::vector<int64_t>{});
  for (int64_t id : p.forced_eos_token_ids) check_token(id, "forced_eos_token_id", vocab);
  p.max_length = s.max_length;
  p.sample = s.do_sample;
  p.temperature = either(user.temperature, def.temperature).value_or(1.0);
  p.top_k = either(user.top_k, def.top_k).value_or(50);
  p.top_p = either(user.top_p, def.top_p).value_or(1.0);
  if (s.do_sample) {
    if (!(p.temperature > 0) || !std::isfinite(p.temperature)) throw GenerationError("temperature must be > 0");
    if (p.top_k < 0) throw GenerationError("top_k must be >= 0");
    if (!(p.top_p >= 0 && p.top_p <= 1)) throw GenerationError("top_p must be in [0, 1]");
  }
  // Beam methods keep one non-eos token more than there are eos tokens.
  p.min_tokens_to_keep = s.num_beams > 1 ? (s.eos.empty() ? 2 : int64_t(s.eos.size()) + 1) : 1;
  if (s.num_beams > 1 && std::max<int64_t>(2, 1 + int64_t(s.eos.size())) > vocab) {
    throw GenerationError("num_beams " + std::to_string(s.num_beams) + " is too large for a vocabulary of " +
                          std::to_string(vocab));
  }
  s.seed = user.seed ? *user.seed : std::random_device{}();
  return s;
}

std::vector<std::vector<int64_t>> to_rows(const at::Tensor& t) {
  const auto cpu = t.to(at::kCPU, at::kLong).contiguous();
  std::vector<std::vector<int64_t>> rows(cpu.size(0));
  const int64_t* data = cpu.data_ptr<int64_t>();
  for (int64_t r = 0; r < cpu.size(0); ++r) rows[r].assign(data + r * cpu.size(1), data + (r + 1) * cpu.size(1));
  return rows;
}

std::vector<float> to_floats(const at::Tensor& t) {
  const auto cpu = t.to(at::kCPU, at::kFloat).contiguous();
  return {cpu.data_ptr<float>(), cpu.data_ptr<float>() + cpu.numel()};
}

}  // namespace

at::Tensor draw(const std::function<at::Tensor()>& multinomial) {
  try {
    return multinomial();
  } catch (const c10::Error&) {  // NaN / inf probabilities: the same condition transformers hits, named
    throw GenerationError("sampling needs finite probabilities, but the model produced NaN or infinite scores "
                          "(non-finite weights or inputs?)");
  }
}

namespace {

// Columns for the loops' per-position buffers: max_length, or past the position table only as
// far as a loop gets before check_position() stops it (extra: 1 for greedy decoding, 2
// for beam search, which finishes every beam at its buffer's last column).
int64_t buffer_length(const Settings& s, int64_t extra) {
  return s.positions >= s.max_length - 1 ? s.max_length : std::min(s.max_length, s.positions + extra);
}

// Feeding position `pos` with a sequence still running.
void check_position(const Settings& s, int64_t pos) {
  if (pos < s.positions) return;
  throw GenerationError("max_length " + std::to_string(s.max_length) + " needs " + std::to_string(s.max_length - 1) +
                        " decoder positions, more than the model's " + std::to_string(s.positions) +
                        ", and a sequence was still running when they ran out: lower max_new_tokens / max_length");
}

// transformers' _sample: greedy (argmax) or multinomial sampling, one row per output.
GenerationResult search(const LoadedModel& model, const Settings& s, DecoderState& state, int64_t rows,
                        at::Generator& generator) {
  const auto opts = state.cross_mask.options().dtype(at::kLong);
  auto seqs = at::full({rows, buffer_length(s, 1)}, s.decoder_start, opts);
  auto unfinished = at::ones({rows}, opts);
  auto scores = at::zeros({rows}, opts.dtype(at::kFloat));
  const at::Tensor eos = s.eos.empty() ? at::Tensor() : at::tensor(s.eos, at::kLong).to(opts.device());
  int64_t len = 1;
  while (true) {
    check_position(s, len - 1);
    const auto logits = model.net.step(seqs.select(1, len - 1), state);
    const auto processed = s.processors(seqs.narrow(1, 0, len), logits);
    at::Tensor next;
    if (s.do_sample) {
      next = draw([&] { return at::multinomial(at::softmax(processed, -1).cpu(), 1, false, generator); })
                 .squeeze(1)
                 .to(opts.device());
    } else {
      next = at::argmax(processed, -1);
    }
    const auto token_log_prob = at::log_softmax(processed, -1).gather(1, next.unsqueeze(1)).squeeze(1);
    scores += at::where(unfinished.to(at::kBool), token_log_prob, 0.0);
    if (eos.defined()) next = next * unfinished + *s.pad * (1 - unfinished);  // finished rows get padding
    seqs.select(1, len).copy_(next);
    ++len;
    auto done = at::full({rows}, len >= s.max_length, opts.dtype(at::kBool));
    if (eos.defined()) done = done | at::isin(next, eos);
    unfinished = unfinished * done.logical_not();
    if (unfinished.max().item<int64_t>() == 0) break;
  }
  return {to_rows(seqs.narrow(1, 0, len)), to_floats(scores)};
}

GenerationResult beam_search(const LoadedModel& model, const Settings& s, DecoderState& state, int64_t batch,
                             at::Generator& generator) {
  BeamSearchConfig c;
  c.batch = batch;
  c.beams = s.num_beams;
  c.vocab = model.info.vocab_size;
  c.max_length = buffer_length(s, 2);
  c.length_penalty = s.length_penalty;
  c.early_stopping = s.early_stopping;
  c.eos_token_ids = s.eos;
  // transformers: `pad_token_id or eos_token_id[0] if eos_token_id is not None else -1` (a pad of
  // 0 is falsy there, so it falls through to eos).
  c.fill_token = s.eos.empty() ? -1 : (s.pad && *s.pad != 0 ? *s.pad : s.eos[0]);
  c.sample = s.do_sample;
  // pygen/generation/search.py's beam_search, step by step. The beam state lives where the
  // kernels run: the model's device, or the CPU for a device this build has no kernels for.
  const auto device = state.cross_mask.device();
  const auto state_device = has_generation_kernels(device) ? device : c10::Device(c10::kCPU);
  BeamSearch beams(c, at::full({batch * s.num_beams, 1}, s.decoder_start, at::dtype(at::kLong).device(state_device)));
  at::Tensor tokens = beams.running_sequences().select(1, 0);
  for (int64_t pos = 0;; ++pos) {
    check_position(s, pos);
    const auto logits = model.net.step(tokens.to(device), state);
    beams.step(s.processors(beams.running_sequences(), logits, /*log_softmax=*/true), generator);
    if (beams.done()) break;
    state.reorder(beams.parents());
    tokens = beams.next_tokens();
  }
  auto [seqs, scores] = beams.result(s.num_return_sequences);
  return {to_rows(seqs), to_floats(scores)};
}

}  // namespace

GenerationResult generate(const LoadedModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                          const GenerationOptions& options) {
  const Settings s = resolve(options, model);
  const int64_t batch = input_ids.size(0);
  const int64_t group = std::max(s.num_beams, s.num_return_sequences);
  int64_t rows = 0;
  if (__builtin_mul_overflow(batch, group, &rows)) {
    throw GenerationError("batch size x num_beams (or num_return_sequences) overflows: " + std::to_string(batch) +
                          " x " + std::to_string(group));
  }
  auto generator = at::make_generator<at::CPUGeneratorImpl>(s.seed);
  const auto encoded = model.net.encode(input_ids, attention_mask, /*skip_padding=*/true);
  DecoderState state = model.net.start(encoded, attention_mask, group, std::min(s.max_length - 1, s.positions));
  if (s.num_beams > 1) return beam_search(model, s, state, batch, generator);
  return search(model, s, state, batch * group, generator);
}

}  // namespace pygen

// pygen::Model: the public face of the engine. Every entry point runs in inference mode and turns
// ATen failures into pygen::Error, so hosts catch one exception family.
#include "pygen/model.h"

#include <ATen/Context.h>
#include <ATen/ops/full.h>
#include <ATen/ops/tensor.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cctype>

#include "generate.h"
#include "models.h"
#include "pygen/error.h"

namespace pygen {

class Model::Impl {
 public:
  LoadedModel model;
  c10::Device device = c10::kCPU;
  c10::ScalarType dtype = c10::kFloat;

  // Validated copies of a host's batch on the model's device: int64 ids, bool mask.
  std::pair<at::Tensor, at::Tensor> inputs(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;
  // Unpadded rows -> right-padded CPU ids and mask (validated by inputs() next).
  std::pair<at::Tensor, at::Tensor> pad(const std::vector<std::vector<int64_t>>& rows) const;
};

namespace {

template <typename F>
auto guarded(F&& body) -> decltype(body()) {
  try {
    c10::InferenceMode inference;
    return body();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    throw Error("out of memory (std::bad_alloc)");
  } catch (const std::exception& e) {  // std::filesystem_error, std::length_error...: one family for hosts
    throw Error(std::string("unexpected error: ") + e.what());
  }
}

std::optional<EarlyStopping> read_early_stopping(const ConfigView& config) {
  const json::Value* v = config.raw("early_stopping");
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_bool()) return v->as_bool() ? EarlyStopping::kTrue : EarlyStopping::kHeuristic;
  if (v->is_string() && v->as_string() == "never") return EarlyStopping::kNever;
  throw ConfigError(config.where() + ": \"early_stopping\" must be true, false or \"never\"");
}

// Processors of transformers' generate() that the C++ engine does not run (the Python package
// runs them): a generation config that turns one on is refused, so a C++ host never silently
// generates something else than Python does. Neutral values (what "off" is written as) pass.
void refuse_unimplemented_options(const ConfigView& c) {
  static const std::pair<const char*, double> kNeutralNumber[] = {
      {"encoder_no_repeat_ngram_size", 0}, {"encoder_repetition_penalty", 1}, {"typical_p", 1},
      {"epsilon_cutoff", 0}, {"eta_cutoff", 0}, {"num_beam_groups", 1}, {"diversity_penalty", 0},
      {"guidance_scale", 1}};
  static const char* const kNeutralOff[] = {  // off: absent, null, false or empty
      "bad_words_ids", "suppress_tokens", "begin_suppress_tokens", "sequence_bias",
      "exponential_decay_length_penalty", "min_p", "top_h", "remove_invalid_values", "renormalize_logits",
      "constraints", "force_words_ids", "stop_strings", "max_time", "penalty_alpha", "watermarking_config",
      "token_healing"};
  const auto refuse = [&](const char* key) {
    throw ConfigError(c.where() + ": generation option \"" + key +
                      "\" is not implemented by the C++ engine (the Python package implements it)");
  };
  for (const auto& [key, neutral] : kNeutralNumber) {
    const json::Value* v = c.raw(key);
    if (v && !v->is_null() && !(v->is_number() && v->as_double() == neutral)) refuse(key);
  }
  for (const char* key : kNeutralOff) {
    const json::Value* v = c.raw(key);
    if (!v || v->is_null() || (v->is_bool() && !v->as_bool())) continue;
    if ((v->is_array() && v->as_array().empty()) || (v->is_object() && v->as_object().empty())) continue;
    refuse(key);
  }
}

}  // namespace

GenerationOptions read_generation_options(const ConfigView& c) {
  refuse_unimplemented_options(c);
  GenerationOptions o;
  o.max_length = c.get_optional_int("max_length");
  o.max_new_tokens = c.get_optional_int("max_new_tokens");
  o.min_length = c.get_optional_int("min_length");
  o.min_new_tokens = c.get_optional_int("min_new_tokens");
  o.num_beams = c.get_optional_int("num_beams");
  o.do_sample = c.get_optional_bool("do_sample");
  o.num_return_sequences = c.get_optional_int("num_return_sequences");
  o.early_stopping = read_early_stopping(c);
  o.length_penalty = c.get_optional_double("length_penalty");
  o.repetition_penalty = c.get_optional_double("repetition_penalty");
  o.no_repeat_ngram_size = c.get_optional_int("no_repeat_ngram_size");
  o.temperature = c.get_optional_double("temperature");
  o.top_k = c.get_optional_int("top_k");
  o.top_p = c.get_optional_double("top_p");
  o.forced_bos_token_id = c.get_optional_int("forced_bos_token_id");
  o.forced_eos_token_id = c.get_optional_int_list("forced_eos_token_id");
  o.eos_token_id = c.get_optional_int_list("eos_token_id");
  o.pad_token_id = c.get_optional_int("pad_token_id");
  o.bos_token_id = c.get_optional_int("bos_token_id");
  o.decoder_start_token_id = c.get_optional_int("decoder_start_token_id");
  return o;
}

Model::Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Model Model::load(const std::string& directory, const LoadOptions& options) {
  return guarded([&] {
    if (!c10::isFloatingType(options.dtype) || c10::isComplexType(options.dtype)) {
      throw InputError("dtype must be a floating type, got " + std::string(c10::toString(options.dtype)));
    }
    if (options.device.is_cuda() && !at::hasCUDA()) throw InputError("CUDA is not available in this build or machine");
    const std::filesystem::path dir(directory);
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) throw CheckpointError("no checkpoint directory at " + directory);

    auto impl = std::make_shared<Impl>();
    impl->device = options.device;
    impl->dtype = options.dtype;
    const json::Value config_json = read_json_file(dir / "config.json");
    const ConfigView config(config_json, (dir / "config.json").string());
    const std::string type = config.get_string("model_type", "");
    const WeightFiles files(dir);
    const WeightLoader weights(files, options.device, options.dtype);
    if (type == "bart") {
      load_bart(config, weights, impl->model);
    } else if (type == "encoder-decoder") {
      load_encoder_decoder(config, weights, impl->model);
    } else {
      throw ConfigError(config.where() + ": unsupported model_type \"" + type +
                        "\" (supported: bart, encoder-decoder)");
    }

    // transformers reads generation defaults from generation_config.json; without one, from the
    // legacy keys of config.json, with special tokens falling back to the decoder's config.
    GenerationOptions& defaults = impl->model.generation_defaults;
    const auto generation_path = dir / "generation_config.json";
    if (std::filesystem::is_regular_file(generation_path, ec)) {
      const json::Value generation_json = read_json_file(generation_path);
      defaults = read_generation_options(ConfigView(generation_json, generation_path.string()));
    } else {
      defaults = read_generation_options(config);
      if (config.has("decoder")) {
        const GenerationOptions decoder = read_generation_options(config.child("decoder"));
        if (!defaults.bos_token_id) defaults.bos_token_id = decoder.bos_token_id;
        if (!defaults.eos_token_id) defaults.eos_token_id = decoder.eos_token_id;
        if (!defaults.pad_token_id) defaults.pad_token_id = decoder.pad_token_id;
        if (!defaults.decoder_start_token_id) defaults.decoder_start_token_id = decoder.decoder_start_token_id;
      }
    }
    return Model(std::move(impl));
  });
}

const ModelInfo& Model::info() const { return impl_->model.info; }
c10::Device Model::device() const { return impl_->device; }
c10::ScalarType Model::dtype() const { return impl_->dtype; }

std::pair<at::Tensor, at::Tensor> Model::Impl::inputs(const at::Tensor& input_ids,
                                                      const at::Tensor& attention_mask) const {
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(0) == 0 || input_ids.size(1) == 0) {
    throw InputError("input_ids must be a non-empty [batch, length] tensor");
  }
  if (!c10::isIntegralType(input_ids.scalar_type(), /*includeBool=*/false)) {
    throw InputError("input_ids must hold integers, got " + std::string(c10::toString(input_ids.scalar_type())));
  }
  if (!attention_mask.defined() || attention_mask.sizes() != input_ids.sizes()) {
    throw InputError("attention_mask must have the shape of input_ids");
  }
  const auto ids = input_ids.to(device, at::kLong);
  const int64_t vocab = model.info.encoder_vocab_size;
  const int64_t low = ids.min().item<int64_t>(), high = ids.max().item<int64_t>();
  if (low < 0 || high >= vocab) {
    throw InputError("input id " + std::to_string(low < 0 ? low : high) + " is outside the encoder vocabulary [0, " +
                     std::to_string(vocab) + ")");
  }
  const auto mask = attention_mask.to(device).ne(0);
  if (!mask.any(1).all().item<bool>()) throw InputError("every sequence needs at least one unmasked token");
  return {ids, mask};
}

at::Tensor Model::encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  return guarded([&] {
    const auto [ids, mask] = impl_->inputs(input_ids, attention_mask);
    return impl_->model.net.encode(ids, mask);
  });
}

GenerationResult Model::generate(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                 const GenerationOptions& options) const {
  return guarded([&] {
    const auto [ids, mask] = impl_->inputs(input_ids, attention_mask);
    return pygen::generate(impl_->model, ids, mask, options);
  });
}

std::pair<at::Tensor, at::Tensor> Model::Impl::pad(const std::vector<std::vector<int64_t>>& rows) const {
  if (rows.empty()) throw InputError("input_ids is an empty batch");
  size_t longest = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].empty()) throw InputError("input sequence " + std::to_string(i) + " is empty");
    longest = std::max(longest, rows[i].size());
  }
  const int64_t batch = static_cast<int64_t>(rows.size()), len = static_cast<int64_t>(longest);
  auto ids = at::full({batch, len}, model.info.encoder_pad_token_id, at::kLong);
  auto mask = at::full({batch, len}, false, at::kBool);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t n = static_cast<int64_t>(rows[i].size());
    ids[i].narrow(0, 0, n).copy_(at::tensor(rows[i], at::kLong));
    mask[i].narrow(0, 0, n).fill_(true);
  }
  return {ids, mask};
}

at::Tensor Model::encode(const std::vector<std::vector<int64_t>>& input_ids) const {
  return guarded([&] {
    const auto [ids, mask] = impl_->pad(input_ids);
    return encode(ids, mask);
  });
}

GenerationResult Model::generate(const std::vector<std::vector<int64_t>>& input_ids,
                                 const GenerationOptions& options) const {
  return guarded([&] {
    const auto [ids, mask] = impl_->pad(input_ids);
    return generate(ids, mask, options);
  });
}

c10::ScalarType parse_dtype(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "float32" || n == "float" || n == "fp32") return c10::kFloat;
  if (n == "float16" || n == "half" || n == "fp16") return c10::kHalf;
  if (n == "bfloat16" || n == "bf16") return c10::kBFloat16;
  if (n == "float64" || n == "double" || n == "fp64") return c10::kDouble;
  throw InputError("unknown dtype \"" + name + "\" (float32, float16, bfloat16 or float64)");
}

c10::Device parse_device(const std::string& name) {
  try {
    return c10::Device(name);
  } catch (const c10::Error&) {
    throw InputError("unknown device \"" + name + "\" (cpu, cuda, cuda:N)");
  }
}

}  // namespace pygen

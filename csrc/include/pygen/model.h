// A seq2seq model loaded from a checkpoint directory, and generation with it.
//
// Thread safety: a loaded Model is immutable. Any number of threads may call encode() and
// generate() on one Model (or on copies of it, which share the weights) at the same time; each
// call allocates its own KV cache and random generator and touches no shared mutable state.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pygen/generation_options.h"

namespace pygen {

struct LoadOptions {
  c10::Device device = c10::kCPU;    // weights and all computation live here
  c10::ScalarType dtype = c10::kFloat;  // float32, float16, bfloat16 or float64
};

// What a loaded checkpoint is, read from its config files.
struct ModelInfo {
  std::string model_type;    // "bart" or "encoder-decoder"
  std::string encoder_type;  // "bart", "bert", "roberta" or "bert-generation"
  std::string decoder_type;
  int64_t vocab_size = 0;                    // decoder (output) vocabulary
  int64_t encoder_vocab_size = 0;            // valid input ids are [0, encoder_vocab_size)
  int64_t encoder_pad_token_id = 0;          // pads ragged inputs (and is masked out)
  int64_t max_source_positions = 0;          // longest input the encoder's positions cover
  int64_t max_target_positions = 0;          // longest output the decoder's positions cover
};

class Model {
 public:
  // Reads config.json, generation_config.json (optional) and model.safetensors or the shards of
  // model.safetensors.index.json from `directory`. Supported: BartForConditionalGeneration
  // ("bart") and EncoderDecoderModel ("encoder-decoder") over bert, roberta and bert-generation.
  // Throws CheckpointError / ConfigError / InputError.
  static Model load(const std::string& directory, const LoadOptions& options = {});

  const ModelInfo& info() const;
  c10::Device device() const;
  c10::ScalarType dtype() const;

  // Encoder hidden states [batch, src_len, hidden] (before EncoderDecoderModel's enc_to_dec_proj)
  // of input_ids [batch, src_len] int64 with attention_mask [batch, src_len] (1 = token, 0 = pad).
  at::Tensor encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;
  // The same for unpadded id sequences, right-padded and masked as generate() pads them; rows
  // shorter than the longest hold the states of padding past their length.
  at::Tensor encode(const std::vector<std::vector<int64_t>>& input_ids) const;

  // Generates from a batch of unpadded id sequences: they are right-padded with
  // info().encoder_pad_token_id and masked, as a tokenizer's batch would be.
  GenerationResult generate(const std::vector<std::vector<int64_t>>& input_ids,
                            const GenerationOptions& options = {}) const;
  // Generates from padded input_ids [batch, src_len] int64 and attention_mask [batch, src_len].
  GenerationResult generate(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                            const GenerationOptions& options = {}) const;

  class Impl;

 private:
  explicit Model(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// "float32"/"float"/"fp32", "float16"/"half"/"fp16", "bfloat16"/"bf16", "float64"/"double";
// throws InputError for anything else.
c10::ScalarType parse_dtype(const std::string& name);
// "cpu", "cuda", "cuda:1"...; throws InputError for anything else.
c10::Device parse_device(const std::string& name);

}  // namespace pygen

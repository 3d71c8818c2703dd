// Loading a checkpoint into the shared transformer: one loader per family, plus the generation
// defaults every checkpoint carries.
#pragma once
#include <optional>

#include "checkpoint.h"
#include "pygen/generation_options.h"
#include "pygen/model.h"
#include "transformer.h"

namespace pygen {

struct LoadedModel {
  Seq2SeqTransformer net;
  ModelInfo info;
  GenerationOptions generation_defaults;  // generation_config.json, else config.json's legacy keys
  std::optional<int64_t> max_position_embeddings;  // of the top-level config: caps the default max_length
};

// BartForConditionalGeneration ("model_type": "bart").
void load_bart(const ConfigView& config, const WeightLoader& weights, LoadedModel& out);
// EncoderDecoderModel ("model_type": "encoder-decoder") over bert / roberta / bert-generation.
void load_encoder_decoder(const ConfigView& config, const WeightLoader& weights, LoadedModel& out);

// The generation fields of a generation_config.json (or of a legacy config.json).
GenerationOptions read_generation_options(const ConfigView& config);

}  // namespace pygen

// generate(): options resolved against the checkpoint's defaults as transformers resolves them,
// then greedy search, sampling or beam search over the shared transformer.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>

#include "models.h"
#include "pygen/generation_options.h"

namespace pygen {

// input_ids [batch, len] int64 and attention_mask [batch, len] bool, on the model's device and
// already validated.
GenerationResult generate(const LoadedModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                          const GenerationOptions& options);

// Runs a multinomial draw; ATen's failure on NaN / inf probabilities becomes a GenerationError.
at::Tensor draw(const std::function<at::Tensor()>& multinomial);

}  // namespace pygen

// generate(): options resolved against the checkpoint's defaults as transformers resolves them,
// then greedy search, sampling or beam search over the shared transformer.
#pragma once
#include <ATen/core/Tensor.h>

#include "models.h"
#include "pygen/generation_options.h"

namespace pygen {

// input_ids [batch, len] int64 and attention_mask [batch, len] bool, on the model's device and
// already validated.
GenerationResult generate(const LoadedModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                          const GenerationOptions& options);

}  // namespace pygen

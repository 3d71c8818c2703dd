// The post-LayerNorm encoder-decoder transformer every supported family is an instance of. BART
// and the BERT family (BERT, RoBERTa, BertGeneration inside EncoderDecoderModel) differ only in
// their embeddings, activation and LM head, so one forward serves both; the family loaders
// (bart.cpp, bert.cpp) map checkpoint names onto these structs.
#pragma once
#include <ATen/core/Tensor.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace pygen {

enum class Activation {
  kGelu, kGeluTanh, kRelu, kSilu, kTanh, kSigmoid, kQuickGelu, kIdentity,
  kGeluErf, kGeluTanhFormula, kGelu10, kLaplace, kLeakyRelu, kMish, kRelu2, kRelu6, kHardswish, kSqrtSoftplus
};

// transformers' ACT2FN names; ConfigError for the ones pygen does not implement.
Activation parse_activation(const std::string& name, const std::string& where);

struct Linear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
  at::Tensor operator()(const at::Tensor& x) const;
};

// Projections of one input stacked into one (self-attention q, k, v; cross-attention k, v).
Linear fuse(std::initializer_list<Linear> parts);

struct LayerNorm {
  at::Tensor weight, bias;
  double eps = 1e-5;
  at::Tensor operator()(const at::Tensor& x) const;
};

struct Layer {
  Linear qkv;  // self-attention q, k, v fused into one projection [3 * hidden, hidden]
  Linear self_out;
  LayerNorm self_norm;
  bool has_cross = false;  // decoder layers attend to the encoder
  Linear cross_q, cross_kv, cross_out;  // cross_kv fuses k and v [2 * hidden, encoder hidden]
  LayerNorm cross_norm;
  Linear fc1, fc2;
  LayerNorm ffn_norm;
};

enum class PositionIds {
  kArange,       // position i is i (BERT, BertGeneration; BART with offset 2)
  kAfterPadding  // RoBERTa: non-pad tokens count from pad_token_id + 1, pads sit at pad_token_id
};

struct Embeddings {
  at::Tensor word;  // [vocab, hidden]
  double word_scale = 1.0;  // BART's scale_embedding: sqrt(d_model)
  at::Tensor position;      // [rows, hidden]
  int64_t position_offset = 0;  // BART's learned positions start at row 2
  PositionIds position_ids = PositionIds::kArange;
  int64_t pad_token_id = 0;
  at::Tensor token_type;  // row 0 of token_type_embeddings [hidden], or undefined
  LayerNorm norm;

  // How many positions (0, 1, ...) of unpadded input the position table covers.
  int64_t max_positions() const;
  // [batch, len] ids at positions starting from `past` -> normalized embeddings [batch, len, hidden].
  at::Tensor operator()(const at::Tensor& ids, int64_t past) const;
};

struct Stack {
  Embeddings embeddings;
  std::vector<Layer> layers;
  int64_t heads = 0, head_dim = 0;
  Activation activation = Activation::kGelu;
  bool clamp_fp16 = false;  // BART's encoder clamps float16 overflow after each layer
  int64_t vocab_size() const { return embeddings.word.size(0); }
  int64_t hidden_size() const { return embeddings.word.size(1); }
};

struct LMHead {
  bool has_transform = false;  // BERT/RoBERTa: dense -> activation -> LayerNorm first
  Linear transform;
  Activation transform_activation = Activation::kGelu;
  LayerNorm transform_norm;
  Linear decoder;         // [vocab, hidden], bias optional
  at::Tensor final_bias;  // BART's final_logits_bias [vocab], added after, or undefined
  at::Tensor operator()(const at::Tensor& x) const;
};

// Per-call decoder state: the preallocated self-attention cache of every decoder row and the
// cross-attention keys/values, computed once per source row and shared by its kv_group rows.
struct DecoderState {
  std::vector<at::Tensor> self_k, self_v;    // [rows, capacity, heads, head_dim]
  std::vector<at::Tensor> cross_k, cross_v;  // [sources, src_len, heads, head_dim]
  at::Tensor cross_mask;                     // [sources, src_len] bool, true = token
  int64_t kv_group = 1;
  int64_t length = 0;  // positions filled

  // Beam search: row i continues the hypothesis of row parents[i].
  void reorder(const at::Tensor& parents);
};

// Attention over [batch, len, heads, dim] tensors: pygen::attention_fwd through the dispatcher
// where the device has a kernel, else attention_aten below.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                     bool causal, double scale, int64_t kv_group);
// The same attention in plain ATen ops, for devices pygen was built without kernels for.
at::Tensor attention_aten(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                          bool causal, double scale, int64_t kv_group);

struct Seq2SeqTransformer {
  Stack encoder, decoder;
  bool has_enc_to_dec_proj = false;  // EncoderDecoderModel with different hidden sizes
  Linear enc_to_dec_proj;
  LMHead lm_head;

  // input_ids [batch, len] int64, attention_mask [batch, len] bool -> [batch, len, encoder hidden].
  // skip_padding (generation): the layers run on the real tokens only and the padding's states
  // come out as zeros, which only masked cross-attention keys read.
  at::Tensor encode(const at::Tensor& input_ids, const at::Tensor& attention_mask, bool skip_padding = false) const;
  // State for sources x kv_group decoder rows of up to `capacity` positions.
  DecoderState start(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask, int64_t kv_group,
                     int64_t capacity) const;
  // Feeds tokens [rows] at position state.length; returns float32 logits [rows, vocab].
  at::Tensor step(const at::Tensor& tokens, DecoderState& state) const;
};

}  // namespace pygen

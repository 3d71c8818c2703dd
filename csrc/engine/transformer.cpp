#include "transformer.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/embedding.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/erf.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/hardswish.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/layer_norm.h>
#include <ATen/ops/leaky_relu.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/mish.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/pow.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/relu6.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/silu.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/softplus.h>
#include <ATen/ops/square.h>
#include <ATen/ops/tanh.h>
#include <ATen/ops/zeros.h>
#include <c10/core/TensorOptions.h>

#include <cmath>
#include <limits>
#include <map>

#include "beam_search.h"
#include "kernels/linear.h"
#include "pygen/error.h"

namespace pygen {

Activation parse_activation(const std::string& name, const std::string& where) {
  static const std::map<std::string, Activation> kNames = {
      {"gelu", Activation::kGelu},          {"gelu_python", Activation::kGeluErf},
      {"gelu_new", Activation::kGeluTanh},  {"gelu_pytorch_tanh", Activation::kGeluTanh},
      {"gelu_fast", Activation::kGeluTanh}, {"relu", Activation::kRelu},
      {"silu", Activation::kSilu},          {"swish", Activation::kSilu},
      {"tanh", Activation::kTanh},          {"sigmoid", Activation::kSigmoid},
      {"quick_gelu", Activation::kQuickGelu}, {"linear", Activation::kIdentity},
      {"gelu_python_tanh", Activation::kGeluTanhFormula}, {"gelu_accurate", Activation::kGeluTanhFormula},
      {"gelu_10", Activation::kGelu10},     {"laplace", Activation::kLaplace},
      {"leaky_relu", Activation::kLeakyRelu}, {"mish", Activation::kMish},
      {"relu2", Activation::kRelu2},        {"relu6", Activation::kRelu6},
      {"hardswish", Activation::kHardswish}, {"sqrtsoftplus", Activation::kSqrtSoftplus},
  };
  auto it = kNames.find(name);
  if (it == kNames.end()) {
    std::string known;
    for (const auto& [key, value] : kNames) known += (known.empty() ? "" : ", ") + key;
    throw ConfigError(where + ": unsupported activation \"" + name + "\" (supported: " + known + ")");
  }
  return it->second;
}

namespace {

constexpr double kPi = 3.14159265358979323846;

at::Tensor activate(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::kGelu: return at::gelu(x);
    case Activation::kGeluTanh: return at::gelu(x, "tanh");
    case Activation::kRelu: return at::relu(x);
    case Activation::kSilu: return at::silu(x);
    case Activation::kTanh: return at::tanh(x);
    case Activation::kSigmoid: return at::sigmoid(x);
    case Activation::kQuickGelu: return x * at::sigmoid(x * 1.702);
    case Activation::kIdentity: return x;
    // The rest as pygen/activations.py writes them (transformers' ACT2FN).
    case Activation::kGeluErf: return x * 0.5 * (1.0 + at::erf(x / std::sqrt(2.0)));
    case Activation::kGeluTanhFormula:
      return x * 0.5 * (1.0 + at::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * at::pow(x, 3.0))));
    case Activation::kGelu10: return at::clamp(at::gelu(x), -10, 10);
    case Activation::kLaplace: return 0.5 * (1.0 + at::erf((x - 0.707107).div(0.282095 * std::sqrt(2.0))));
    case Activation::kLeakyRelu: return at::leaky_relu(x, 0.01);
    case Activation::kMish: return at::mish(x);
    case Activation::kRelu2: return at::square(at::relu(x));
    case Activation::kRelu6: return at::relu6(x);
    case Activation::kHardswish: return at::hardswish(x);
    case Activation::kSqrtSoftplus: return at::softplus(x).sqrt();
  }
  return x;
}

// [batch, len, heads * dim] -> a [batch, len, heads, dim] view.
at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads});
}

at::Tensor merge_heads(const at::Tensor& x) { return x.reshape({x.size(0), x.size(1), x.size(2) * x.size(3)}); }

using AttentionFwd = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                         const std::optional<at::Tensor>&,
                                                         const std::optional<at::Tensor>&, bool, double, int64_t);

const c10::TypedOperatorHandle<AttentionFwd>& attention_op() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("pygen::attention_fwd", "").typed<AttentionFwd>();
  return op;
}

at::Tensor feed_forward(const Stack& stack, const Layer& layer, const at::Tensor& x) {
  return layer.ffn_norm(x + layer.fc2(activate(layer.fc1(x), stack.activation)));
}

// q, k, v views of a fused [batch, len, 3 * hidden] projection.
std::tuple<at::Tensor, at::Tensor, at::Tensor> split_qkv(const at::Tensor& qkv, int64_t heads) {
  const auto parts = qkv.view({qkv.size(0), qkv.size(1), 3, heads, qkv.size(2) / (3 * heads)});
  return {parts.select(2, 0), parts.select(2, 1), parts.select(2, 2)};
}

// The real tokens of a padded [batch, len] batch as rows of one matrix, as in
// pygen/models/_unpadded.py: the encoder pass runs its token-by-token work (projections,
// feed-forward, norms) on them only and scatters back to [batch, len, ...] for attention.
struct TokenRows {
  int64_t batch = 0, length = 0;
  at::Tensor index;  // flat positions of the real tokens

  // None when `mask` (bool [batch, len], true = token) has no padding.
  static std::optional<TokenRows> of(const at::Tensor& mask) {
    if (!mask.defined() || mask.all().item<bool>()) return std::nullopt;
    return TokenRows{mask.size(0), mask.size(1), mask.reshape({-1}).nonzero().squeeze(1)};
  }
  // [batch, len, hidden] -> [tokens, hidden].
  at::Tensor pack(const at::Tensor& x) const { return x.reshape({batch * length, x.size(2)}).index_select(0, index); }
  // [tokens, hidden] -> [batch, len, hidden], zeros at the padding.
  at::Tensor unpack(const at::Tensor& x) const {
    return at::zeros({batch * length, x.size(1)}, x.options()).index_copy_(0, index, x).view({batch, length, x.size(1)});
  }
};

}  // namespace

at::Tensor Linear::operator()(const at::Tensor& x) const {
  return pygen::linear(x, weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt);
}

Linear fuse(std::initializer_list<Linear> parts) {
  std::vector<at::Tensor> weights, biases;
  for (const auto& part : parts) {
    weights.push_back(part.weight);
    biases.push_back(part.bias);
  }
  return {at::cat(weights), at::cat(biases)};
}

at::Tensor LayerNorm::operator()(const at::Tensor& x) const {
  return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

int64_t Embeddings::max_positions() const {
  const int64_t rows = position.size(0);
  return position_ids == PositionIds::kArange ? rows - position_offset : rows - pad_token_id - 1;
}

at::Tensor Embeddings::operator()(const at::Tensor& ids, int64_t past) const {
  const int64_t len = ids.size(1);
  if (past + len > max_positions()) {
    throw InputError("position " + std::to_string(past + len - 1) + " is beyond the model's " +
                     std::to_string(max_positions()) + " positions (max_position_embeddings)");
  }
  auto x = at::embedding(word, ids);
  if (word_scale != 1.0) x = x * word_scale;
  if (token_type.defined()) x = x + token_type;
  if (position_ids == PositionIds::kArange) {
    const auto rows = at::arange(past + position_offset, past + position_offset + len, ids.options());
    x = x + at::embedding(position, rows);
  } else {
    const auto real = ids.ne(pad_token_id).to(at::kLong);
    x = x + at::embedding(position, (real.cumsum(1) + past) * real + pad_token_id);
  }
  return norm(x);
}

at::Tensor LMHead::operator()(const at::Tensor& x) const {
  auto h = has_transform ? transform_norm(activate(transform(x), transform_activation)) : x;
  auto logits = decoder(h);
  return final_bias.defined() ? logits + final_bias : logits;
}

void DecoderState::reorder(const at::Tensor& parents) {
  std::vector<at::Tensor> buffers(self_k);
  buffers.insert(buffers.end(), self_v.begin(), self_v.end());
  if (buffers.empty()) return;
  const auto index = parents.to(buffers[0].device()).contiguous();
  if (has_generation_kernels(index.device())) {  // pygen::reorder_rows_, as Python's loop calls it
    reorder_rows_op(buffers, index, length);
    return;
  }
  for (auto& buffer : buffers) {  // a device this build has no kernels for
    auto filled = buffer.narrow(1, 0, length);
    filled.copy_(filled.index_select(0, index));
  }
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                     bool causal, double scale, int64_t kv_group) {
  const auto& op = attention_op();
  if (!op.hasKernelForDispatchKey(c10::computeDispatchKey(q.scalar_type(), q.layout(), q.device()))) {
    return attention_aten(q, k, v, key_mask, causal, scale, kv_group);
  }
  std::optional<at::Tensor> mask;
  if (key_mask.defined()) mask = key_mask;
  return std::get<0>(op.call(q, k, v, mask, std::nullopt, causal, scale, kv_group));
}

at::Tensor attention_aten(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                          bool causal, double scale, int64_t kv_group) {
  const int64_t batch = q.size(0), q_len = q.size(1), heads = q.size(2), kv_len = k.size(1);
  TORCH_CHECK(!causal || kv_group == 1, "attention_aten: causal attention with kv_group > 1");
  // The kv_group query rows that share a key row attend like one longer query.
  const auto qh = q.reshape({batch / kv_group, kv_group * q_len, heads, q.size(3)}).transpose(1, 2);
  const auto acc = at::promote_types(q.scalar_type(), at::kFloat);  // softmax in float32 at least
  auto scores = at::matmul(qh, k.permute({0, 2, 3, 1})).to(acc) * scale;  // [b, heads, g * q_len, kv_len]
  auto visible = key_mask.defined() ? key_mask.view({key_mask.size(0), 1, 1, kv_len})
                                    : at::ones({1, 1, 1, kv_len}, q.options().dtype(at::kBool));
  if (causal) visible = visible & at::ones({q_len, kv_len}, visible.options()).tril(kv_len - q_len);
  scores = scores.masked_fill(visible.logical_not(), -std::numeric_limits<float>::infinity());
  const auto probs = at::softmax(scores, -1).nan_to_num(0.0).to(v.scalar_type());  // no visible key: 0
  const auto out = at::matmul(probs, v.transpose(1, 2));  // [b, heads, g * q_len, v_dim]
  return out.transpose(1, 2).reshape({batch, q_len, heads, v.size(3)});
}

at::Tensor Seq2SeqTransformer::encode(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                      bool skip_padding) const {
  const double scale = 1.0 / std::sqrt(double(encoder.head_dim));
  const auto rows = skip_padding ? TokenRows::of(attention_mask) : std::optional<TokenRows>();
  auto x = encoder.embeddings(input_ids, 0);
  if (rows) x = rows->pack(x);
  for (const auto& layer : encoder.layers) {
    auto [q, k, v] = split_qkv(rows ? rows->unpack(layer.qkv(x)) : layer.qkv(x), encoder.heads);
    auto attended = merge_heads(attention(q, k, v, attention_mask, false, scale, 1));
    x = layer.self_norm(x + layer.self_out(rows ? rows->pack(attended) : attended));
    x = feed_forward(encoder, layer, x);
    if (encoder.clamp_fp16 && x.scalar_type() == at::kHalf && !at::isfinite(x).all().item<bool>()) {
      const double limit = 65504.0 - 1000.0;  // torch.finfo(float16).max - 1000, as BART does
      x = at::clamp(x, -limit, limit);
    }
  }
  return rows ? rows->unpack(x) : x;
}

DecoderState Seq2SeqTransformer::start(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask,
                                       int64_t kv_group, int64_t capacity) const {
  DecoderState state;
  state.kv_group = kv_group;
  state.cross_mask = attention_mask;
  const auto memory = has_enc_to_dec_proj ? enc_to_dec_proj(encoder_hidden) : encoder_hidden;
  const auto tokens = TokenRows::of(attention_mask);  // keys/values of the real tokens only
  const auto source = tokens ? tokens->pack(memory) : memory;
  const int64_t rows = encoder_hidden.size(0) * kv_group;
  const auto options = encoder_hidden.options();
  for (const auto& layer : decoder.layers) {
    state.self_k.push_back(at::empty({rows, capacity, decoder.heads, decoder.head_dim}, options));
    state.self_v.push_back(at::empty({rows, capacity, decoder.heads, decoder.head_dim}, options));
    const auto kv = tokens ? tokens->unpack(layer.cross_kv(source)) : layer.cross_kv(source);
    const auto parts = kv.view({kv.size(0), kv.size(1), 2, decoder.heads, decoder.head_dim});
    state.cross_k.push_back(parts.select(2, 0));
    state.cross_v.push_back(parts.select(2, 1));
  }
  return state;
}

at::Tensor Seq2SeqTransformer::step(const at::Tensor& tokens, DecoderState& state) const {
  const double scale = 1.0 / std::sqrt(double(decoder.head_dim));
  const int64_t pos = state.length;
  auto x = decoder.embeddings(tokens.view({-1, 1}), pos);
  for (size_t i = 0; i < decoder.layers.size(); ++i) {
    const auto& layer = decoder.layers[i];
    auto [q, k, v] = split_qkv(layer.qkv(x), decoder.heads);
    state.self_k[i].narrow(1, pos, 1).copy_(k);
    state.self_v[i].narrow(1, pos, 1).copy_(v);
    const auto keys = state.self_k[i].narrow(1, 0, pos + 1), values = state.self_v[i].narrow(1, 0, pos + 1);
    x = layer.self_norm(x + layer.self_out(merge_heads(attention(q, keys, values, at::Tensor(), true, scale, 1))));
    const auto cq = split_heads(layer.cross_q(x), decoder.heads);
    const auto cross = attention(cq, state.cross_k[i], state.cross_v[i], state.cross_mask, false, scale, state.kv_group);
    x = layer.cross_norm(x + layer.cross_out(merge_heads(cross)));
    x = feed_forward(decoder, layer, x);
  }
  state.length = pos + 1;
  return lm_head(x.select(1, 0)).to(at::kFloat);
}

}  // namespace pygen

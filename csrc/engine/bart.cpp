// BartForConditionalGeneration: transformers' modeling_bart.py names and config defaults.
#include <cmath>

#include "models.h"
#include "pygen/error.h"

namespace pygen {
namespace {

struct BartLoader {
  const WeightLoader& w;
  int64_t d_model;

  Linear linear(const std::string& name, int64_t out, int64_t in) const {
    return {w.get(name + ".weight", {out, in}), w.get(name + ".bias", {out})};
  }
  LayerNorm norm(const std::string& name) const {
    return {w.get(name + ".weight", {d_model}), w.get(name + ".bias", {d_model}), 1e-5};
  }

  Layer layer(const std::string& p, int64_t ffn_dim, bool decoder) const {
    Layer l;
    const int64_t d = d_model;
    l.qkv = fuse({linear(p + "self_attn.q_proj", d, d), linear(p + "self_attn.k_proj", d, d),
                  linear(p + "self_attn.v_proj", d, d)});
    l.self_out = linear(p + "self_attn.out_proj", d, d);
    l.self_norm = norm(p + "self_attn_layer_norm");
    if (decoder) {
      l.has_cross = true;
      l.cross_q = linear(p + "encoder_attn.q_proj", d, d);
      l.cross_kv = fuse({linear(p + "encoder_attn.k_proj", d, d), linear(p + "encoder_attn.v_proj", d, d)});
      l.cross_out = linear(p + "encoder_attn.out_proj", d, d);
      l.cross_norm = norm(p + "encoder_attn_layer_norm");
    }
    l.fc1 = linear(p + "fc1", ffn_dim, d);
    l.fc2 = linear(p + "fc2", d, ffn_dim);
    l.ffn_norm = norm(p + "final_layer_norm");
    return l;
  }
};

}  // namespace

void load_bart(const ConfigView& cfg, const WeightLoader& w, LoadedModel& out) {
  const int64_t d = cfg.get_positive_int("d_model", 1024);
  const int64_t vocab = cfg.get_positive_int("vocab_size", 50265);
  const int64_t max_positions = cfg.get_positive_int("max_position_embeddings", 1024);
  const int64_t pad = cfg.get_int("pad_token_id", 1);
  if (pad < 0 || pad >= vocab) {  // pads ragged input rows, so it must be a valid id
    throw ConfigError(cfg.where() + ": pad_token_id " + std::to_string(pad) + " is outside the vocabulary [0, " +
                      std::to_string(vocab) + ")");
  }
  const bool tied = cfg.get_bool("tie_word_embeddings", true);
  const Activation activation = parse_activation(cfg.get_string("activation_function", "gelu"), cfg.where());
  const double scale = cfg.get_bool("scale_embedding", false) ? std::sqrt(double(d)) : 1.0;

  // Tied checkpoints save one of the four names (transformers keeps model.shared.weight).
  at::Tensor shared;
  if (tied) {
    shared = w.get_first({"model.shared.weight", "model.encoder.embed_tokens.weight",
                          "model.decoder.embed_tokens.weight", "lm_head.weight"},
                         {vocab, d});
  }
  const BartLoader loader{w, d};
  auto stack = [&](const std::string& side) {
    Stack s;
    const std::string p = "model." + side + ".";
    const int64_t heads = cfg.get_positive_int(side + "_attention_heads", 16);
    if (d % heads != 0) {
      throw ConfigError(cfg.where() + ": d_model " + std::to_string(d) + " is not a multiple of " + side +
                        "_attention_heads " + std::to_string(heads));
    }
    s.heads = heads;
    s.head_dim = d / heads;
    s.activation = activation;
    s.clamp_fp16 = side == "encoder";
    s.embeddings.word = tied ? shared : w.get(p + "embed_tokens.weight", {vocab, d});
    s.embeddings.word_scale = scale;
    s.embeddings.position = w.get(p + "embed_positions.weight", {max_positions + 2, d});
    s.embeddings.position_offset = 2;
    s.embeddings.pad_token_id = pad;
    s.embeddings.norm = loader.norm(p + "layernorm_embedding");
    const int64_t layers = cfg.get_positive_int(side + "_layers", 12);
    const int64_t ffn = cfg.get_positive_int(side + "_ffn_dim", 4096);
    for (int64_t i = 0; i < layers; ++i) {
      s.layers.push_back(loader.layer(p + "layers." + std::to_string(i) + ".", ffn, side == "decoder"));
    }
    return s;
  };
  out.net.encoder = stack("encoder");
  out.net.decoder = stack("decoder");
  out.net.lm_head.decoder.weight = tied ? shared : w.get("lm_head.weight", {vocab, d});
  // transformers tolerates a missing final_logits_bias (zeros).
  if (w.has("final_logits_bias")) out.net.lm_head.final_bias = w.get("final_logits_bias", {1, vocab}).view({vocab});

  out.info.model_type = out.info.encoder_type = out.info.decoder_type = "bart";
  out.info.vocab_size = out.info.encoder_vocab_size = vocab;
  out.info.encoder_pad_token_id = pad;
  out.info.max_source_positions = out.info.max_target_positions = max_positions;
  out.max_position_embeddings = max_positions;
}

}  // namespace pygen

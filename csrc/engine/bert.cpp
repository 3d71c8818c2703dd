// EncoderDecoderModel over the BERT family: BertModel / BertLMHeadModel, RobertaModel /
// RobertaForCausalLM, BertGenerationEncoder / BertGenerationDecoder, with transformers' names,
// config defaults and weight tying.
#include "models.h"
#include "pygen/error.h"

namespace pygen {
namespace {

// transformers' config-class defaults of the fields pygen reads.
struct FamilyDefaults {
  int64_t vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size;
  int64_t max_position_embeddings, pad_token_id;
  bool token_types;  // BertGeneration has no token_type_embeddings
};

FamilyDefaults defaults_of(const std::string& type, const std::string& where) {
  if (type == "bert") return {30522, 768, 12, 12, 3072, 512, 0, true};
  if (type == "roberta") return {50265, 768, 12, 12, 3072, 512, 1, true};
  if (type == "bert-generation") return {50358, 1024, 24, 16, 4096, 512, 0, false};
  throw ConfigError(where + ": unsupported model_type \"" + type +
                    "\" (EncoderDecoderModel supports bert, roberta and bert-generation)");
}

struct BertLoader {
  const WeightLoader& w;
  int64_t hidden;
  double eps;

  Linear linear(const std::string& name, int64_t out, int64_t in) const {
    return {w.get(name + ".weight", {out, in}), w.get(name + ".bias", {out})};
  }
  LayerNorm norm(const std::string& name) const {
    return {w.get(name + ".weight", {hidden}), w.get(name + ".bias", {hidden}), eps};
  }

  Layer layer(const std::string& p, int64_t intermediate, bool decoder) const {
    Layer l;
    const int64_t h = hidden;
    l.qkv = fuse({linear(p + "attention.self.query", h, h), linear(p + "attention.self.key", h, h),
                  linear(p + "attention.self.value", h, h)});
    l.self_out = linear(p + "attention.output.dense", h, h);
    l.self_norm = norm(p + "attention.output.LayerNorm");
    if (decoder) {
      l.has_cross = true;
      l.cross_q = linear(p + "crossattention.self.query", h, h);
      l.cross_kv = fuse({linear(p + "crossattention.self.key", h, h), linear(p + "crossattention.self.value", h, h)});
      l.cross_out = linear(p + "crossattention.output.dense", h, h);
      l.cross_norm = norm(p + "crossattention.output.LayerNorm");
    }
    l.fc1 = linear(p + "intermediate.dense", intermediate, h);
    l.fc2 = linear(p + "output.dense", h, intermediate);
    l.ffn_norm = norm(p + "output.LayerNorm");
    return l;
  }
};

// One side of the pair. `base` prefixes the embeddings and layers ("encoder." for the encoder,
// "decoder.bert." or "decoder.roberta." inside the decoder's LM model); `word` is the tied word
// embedding when the caller already resolved it.
Stack load_stack(const ConfigView& cfg, const std::string& type, const WeightLoader& w, const std::string& base,
                 bool decoder, const at::Tensor& word) {
  const FamilyDefaults def = defaults_of(type, cfg.where());
  const int64_t hidden = cfg.get_positive_int("hidden_size", def.hidden_size);
  const int64_t heads = cfg.get_positive_int("num_attention_heads", def.num_attention_heads);
  if (hidden % heads != 0) {
    throw ConfigError(cfg.where() + ": hidden_size " + std::to_string(hidden) +
                      " is not a multiple of num_attention_heads " + std::to_string(heads));
  }
  const int64_t vocab = cfg.get_positive_int("vocab_size", def.vocab_size);
  const int64_t positions = cfg.get_positive_int("max_position_embeddings", def.max_position_embeddings);
  const BertLoader loader{w, hidden, cfg.get_double("layer_norm_eps", 1e-12)};

  Stack s;
  s.heads = heads;
  s.head_dim = hidden / heads;
  s.activation = parse_activation(cfg.get_string("hidden_act", "gelu"), cfg.where());
  Embeddings& e = s.embeddings;
  e.word = word.defined() ? word : w.get(base + "embeddings.word_embeddings.weight", {vocab, hidden});
  e.position = w.get(base + "embeddings.position_embeddings.weight", {positions, hidden});
  e.pad_token_id = cfg.get_int("pad_token_id", def.pad_token_id);
  if (e.pad_token_id < 0 || e.pad_token_id >= vocab) {  // nn.Embedding's padding_idx must be a row
    throw ConfigError(cfg.where() + ": pad_token_id " + std::to_string(e.pad_token_id) +
                      " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
  if (type == "roberta") {
    e.position_ids = PositionIds::kAfterPadding;
    if (e.pad_token_id >= positions - 1) {
      throw ConfigError(cfg.where() + ": pad_token_id " + std::to_string(e.pad_token_id) +
                        " leaves RoBERTa no positions");
    }
  }
  if (def.token_types) {
    const int64_t types = cfg.get_positive_int("type_vocab_size", 2);
    e.token_type = w.get(base + "embeddings.token_type_embeddings.weight", {types, hidden})[0];
  }
  e.norm = loader.norm(base + "embeddings.LayerNorm");
  const int64_t layers = cfg.get_positive_int("num_hidden_layers", def.num_hidden_layers);
  const int64_t intermediate = cfg.get_positive_int("intermediate_size", def.intermediate_size);
  for (int64_t i = 0; i < layers; ++i) {
    s.layers.push_back(loader.layer(base + "encoder.layer." + std::to_string(i) + ".", intermediate, decoder));
  }
  return s;
}

// The decoder's LM head and word embeddings, which tie_word_embeddings shares (the checkpoint
// then holds the embedding, or for old checkpoints possibly only the head's copy).
void load_decoder(const ConfigView& cfg, const std::string& type, const WeightLoader& w, Seq2SeqTransformer& net) {
  const FamilyDefaults def = defaults_of(type, cfg.where());
  const int64_t hidden = cfg.get_positive_int("hidden_size", def.hidden_size);
  const int64_t vocab = cfg.get_positive_int("vocab_size", def.vocab_size);
  const bool tied = cfg.get_bool("tie_word_embeddings", true);
  const std::string base = type == "roberta" ? "decoder.roberta." : "decoder.bert.";
  const std::string head = type == "bert" ? "decoder.cls.predictions." : "decoder.lm_head.";
  const std::string word_name = base + "embeddings.word_embeddings.weight";
  const std::string head_name = head + "decoder.weight";

  LMHead& lm = net.lm_head;
  if (tied) {
    lm.decoder.weight = w.get_first({word_name, head_name}, {vocab, hidden});
    lm.decoder.bias = w.get_first({head + "bias", head + "decoder.bias"}, {vocab});
  } else {
    lm.decoder.weight = w.get(head_name, {vocab, hidden});
    lm.decoder.bias = w.get(head + "decoder.bias", {vocab});
  }
  net.decoder = load_stack(cfg, type, w, base, true, tied ? lm.decoder.weight : at::Tensor());
  const double eps = cfg.get_double("layer_norm_eps", 1e-12);
  if (type == "bert") {
    lm.has_transform = true;
    lm.transform = {w.get(head + "transform.dense.weight", {hidden, hidden}), w.get(head + "transform.dense.bias", {hidden})};
    lm.transform_activation = net.decoder.activation;
    lm.transform_norm = {w.get(head + "transform.LayerNorm.weight", {hidden}),
                         w.get(head + "transform.LayerNorm.bias", {hidden}), eps};
  } else if (type == "roberta") {
    lm.has_transform = true;
    lm.transform = {w.get(head + "dense.weight", {hidden, hidden}), w.get(head + "dense.bias", {hidden})};
    lm.transform_activation = Activation::kGelu;  // RobertaLMHead always uses exact gelu
    lm.transform_norm = {w.get(head + "layer_norm.weight", {hidden}), w.get(head + "layer_norm.bias", {hidden}), eps};
  }
}

}  // namespace

void load_encoder_decoder(const ConfigView& cfg, const WeightLoader& w, LoadedModel& out) {
  const ConfigView enc = cfg.child("encoder"), dec = cfg.child("decoder");
  const std::string enc_type = enc.get_string("model_type", ""), dec_type = dec.get_string("model_type", "");
  if (!dec.get_bool("is_decoder", false) || !dec.get_bool("add_cross_attention", false)) {
    throw ConfigError(dec.where() + ": the decoder of an EncoderDecoderModel needs is_decoder and "
                      "add_cross_attention set to true");
  }
  out.net.encoder = load_stack(enc, enc_type, w, "encoder.", false, at::Tensor());
  load_decoder(dec, dec_type, w, out.net);

  const int64_t enc_hidden = out.net.encoder.hidden_size(), dec_hidden = out.net.decoder.hidden_size();
  if (const auto cross = dec.get_optional_int("cross_attention_hidden_size"); cross && *cross != dec_hidden) {
    throw ConfigError(dec.where() + ": cross_attention_hidden_size different from hidden_size is not supported");
  }
  if (enc_hidden != dec_hidden) {
    out.net.has_enc_to_dec_proj = true;
    out.net.enc_to_dec_proj = {w.get("enc_to_dec_proj.weight", {dec_hidden, enc_hidden}),
                               w.get("enc_to_dec_proj.bias", {dec_hidden})};
  }

  out.info.model_type = "encoder-decoder";
  out.info.encoder_type = enc_type;
  out.info.decoder_type = dec_type;
  out.info.vocab_size = out.net.decoder.vocab_size();
  out.info.encoder_vocab_size = out.net.encoder.vocab_size();
  out.info.encoder_pad_token_id = out.net.encoder.embeddings.pad_token_id;
  out.info.max_source_positions = out.net.encoder.embeddings.max_positions();
  out.info.max_target_positions = out.net.decoder.embeddings.max_positions();
  out.max_position_embeddings = cfg.get_optional_int("max_position_embeddings");
}

}  // namespace pygen

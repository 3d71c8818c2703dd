// Writes small checkpoints for the C++ tests and the fuzz driver: safetensors files by hand (the
// format as its spec describes it) and a random-weight BART directory.
#pragma once
#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace pygen_test {

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s;
}

// A safetensors file of float32 tensors.
inline std::string safetensors_bytes(const std::map<std::string, at::Tensor>& tensors) {
  std::string header = "{", data;
  for (const auto& [name, tensor] : tensors) {
    const auto t = tensor.to(at::kFloat).contiguous();
    std::string shape;
    for (int64_t d : t.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    const size_t begin = data.size();
    data.append(static_cast<const char*>(t.data_ptr()), t.numel() * sizeof(float));
    header += (header.size() > 1 ? "," : "") + std::string("\"") + name + "\":{\"dtype\":\"F32\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

// The tensors of a random BartForConditionalGeneration (tied embeddings, 2 + 2 layers), with
// weights large enough that greedy and beam search take different paths.
inline std::map<std::string, at::Tensor> bart_tensors(int64_t vocab, int64_t d, int64_t ffn, int64_t positions) {
  std::map<std::string, at::Tensor> w;
  auto linear = [&](const std::string& name, int64_t out, int64_t in) {
    w[name + ".weight"] = at::randn({out, in}) / std::sqrt(double(in)) * 2.0;
    w[name + ".bias"] = at::randn({out}) * 0.1;
  };
  auto norm = [&](const std::string& name) {
    w[name + ".weight"] = 1.0 + 0.1 * at::randn({d});
    w[name + ".bias"] = 0.1 * at::randn({d});
  };
  w["model.shared.weight"] = at::randn({vocab, d});
  w["final_logits_bias"] = at::randn({1, vocab});
  for (const std::string side : {"encoder", "decoder"}) {
    const std::string p = "model." + side + ".";
    w[p + "embed_positions.weight"] = at::randn({positions + 2, d}) * 0.5;
    norm(p + "layernorm_embedding");
    for (int i = 0; i < 2; ++i) {
      const std::string l = p + "layers." + std::to_string(i) + ".";
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) linear(l + "self_attn." + proj, d, d);
      norm(l + "self_attn_layer_norm");
      if (side == "decoder") {
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) linear(l + "encoder_attn." + proj, d, d);
        norm(l + "encoder_attn_layer_norm");
      }
      linear(l + "fc1", ffn, d);
      linear(l + "fc2", d, ffn);
      norm(l + "final_layer_norm");
    }
  }
  return w;
}

inline const char* kBartConfig = R"({"model_type": "bart", "vocab_size": 50, "d_model": 16,
    "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
    "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "max_position_embeddings": 64, "scale_embedding": true,
    "activation_function": "gelu", "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
    "decoder_start_token_id": 2, "tie_word_embeddings": true})";

inline const char* kBartGenerationConfig =
    R"({"bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "decoder_start_token_id": 2})";

// A random BART (vocab 50, d_model 16) small enough to run in milliseconds.
inline void write_bart(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  write_file(dir / "config.json", kBartConfig);
  write_file(dir / "generation_config.json", kBartGenerationConfig);
  write_file(dir / "model.safetensors", safetensors_bytes(bart_tensors(50, 16, 32, 64)));
}

// The same model as two shards and a model.safetensors.index.json.
inline void write_sharded_bart(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  write_file(dir / "config.json", kBartConfig);
  write_file(dir / "generation_config.json", kBartGenerationConfig);
  const auto all = bart_tensors(50, 16, 32, 64);
  std::map<std::string, at::Tensor> shards[2];
  std::string index = "{\"metadata\": {}, \"weight_map\": {";
  int i = 0;
  for (const auto& [name, tensor] : all) {
    const int shard = name.find(".decoder.") != std::string::npos ? 1 : 0;
    shards[shard][name] = tensor;
    index += std::string(i++ ? ", " : "") + "\"" + name + "\": \"model-0000" + std::to_string(shard + 1) +
             "-of-00002.safetensors\"";
  }
  index += "}}";
  write_file(dir / "model-00001-of-00002.safetensors", safetensors_bytes(shards[0]));
  write_file(dir / "model-00002-of-00002.safetensors", safetensors_bytes(shards[1]));
  write_file(dir / "model.safetensors.index.json", index);
}

}  // namespace pygen_test

// A checkpoint directory: its JSON config files, read through typed accessors whose errors name
// the file and key, and its weights (one safetensors file or the shards of an index), converted to
// the model's dtype and device and checked against the shapes the config implies.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "json.h"
#include "pygen/safetensors.h"

namespace pygen {

// Parses a JSON file; a missing file or bad JSON throws ConfigError.
json::Value read_json_file(const std::filesystem::path& path);

// Typed, defaulted reads from one JSON object. A key that is absent or null takes the default
// (as transformers' config classes do); a key of the wrong type throws ConfigError.
class ConfigView {
 public:
  ConfigView(const json::Value& object, std::string where);

  const std::string& where() const { return where_; }
  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  int64_t get_positive_int(const std::string& key, int64_t fallback) const;
  std::optional<int64_t> get_optional_int(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  std::optional<double> get_optional_double(const std::string& key) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::optional<bool> get_optional_bool(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // An int or a list of ints (eos_token_id may be either).
  std::optional<std::vector<int64_t>> get_optional_int_list(const std::string& key) const;
  // A required nested object, e.g. "encoder" of an EncoderDecoderConfig.
  ConfigView child(const std::string& key) const;
  // The raw member (nullptr when absent), for values of more than one type.
  const json::Value* raw(const std::string& key) const;

 private:
  const json::Value* get(const std::string& key) const;  // nullptr when absent or null
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;

  const json::Value& object_;
  std::string where_;
};

// The tensors of model.safetensors, or of every shard model.safetensors.index.json lists.
class WeightFiles {
 public:
  explicit WeightFiles(const std::filesystem::path& directory);
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const SafetensorsFile::Entry& entry(const std::string& name) const;
  at::Tensor load(const std::string& name) const;  // CPU, stored dtype

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> index_;
};

// Reads weights for one model: names are checked for presence and shape, then converted to the
// model's floating dtype and moved to its device.
class WeightLoader {
 public:
  WeightLoader(const WeightFiles& files, c10::Device device, c10::ScalarType dtype)
      : files_(files), device_(device), dtype_(dtype) {}

  bool has(const std::string& name) const { return files_.has(name); }
  at::Tensor get(const std::string& name, std::vector<int64_t> shape) const;
  // The first of `names` present (tied weights may be saved under any of their names).
  at::Tensor get_first(std::initializer_list<std::string> names, std::vector<int64_t> shape) const;
  c10::Device device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }

 private:
  const WeightFiles& files_;
  c10::Device device_;
  c10::ScalarType dtype_;
};

}  // namespace pygen

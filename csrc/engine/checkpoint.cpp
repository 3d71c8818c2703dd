#include "checkpoint.h"

#include <fstream>
#include <sstream>

#include "pygen/error.h"

namespace pygen {
namespace {

std::string shape_string(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

json::Value read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw CheckpointError("missing " + path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError("cannot open " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const std::invalid_argument& e) {
    throw ConfigError(path.string() + " is not valid JSON: " + e.what());
  }
}

ConfigView::ConfigView(const json::Value& object, std::string where) : object_(object), where_(std::move(where)) {
  if (!object_.is_object()) throw ConfigError(where_ + " must hold a JSON object");
}

const json::Value* ConfigView::raw(const std::string& key) const { return object_.find(key); }

const json::Value* ConfigView::get(const std::string& key) const {
  const json::Value* v = object_.find(key);
  return v && !v->is_null() ? v : nullptr;
}

bool ConfigView::has(const std::string& key) const { return get(key) != nullptr; }

void ConfigView::wrong_type(const std::string& key, const char* expected) const {
  throw ConfigError(where_ + ": \"" + key + "\" must be " + expected + ", got " +
                    json::Value::type_name(object_.find(key)->type()));
}

std::optional<int64_t> ConfigView::get_optional_int(const std::string& key) const {
  const json::Value* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_int()) wrong_type(key, "an integer");
  return v->as_int();
}

int64_t ConfigView::get_int(const std::string& key, int64_t fallback) const {
  return get_optional_int(key).value_or(fallback);
}

int64_t ConfigView::get_positive_int(const std::string& key, int64_t fallback) const {
  const int64_t value = get_int(key, fallback);
  if (value <= 0) throw ConfigError(where_ + ": \"" + key + "\" must be positive, got " + std::to_string(value));
  // Sizes become tensor dimensions, checked against the weights; capping them first keeps the
  // arithmetic on them (positions + offsets, products) from overflowing.
  constexpr int64_t kLargest = int64_t(1) << 40;
  if (value > kLargest) throw ConfigError(where_ + ": \"" + key + "\" is too large: " + std::to_string(value));
  return value;
}

std::optional<double> ConfigView::get_optional_double(const std::string& key) const {
  const json::Value* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number");
  return v->as_double();
}

double ConfigView::get_double(const std::string& key, double fallback) const {
  return get_optional_double(key).value_or(fallback);
}

std::optional<bool> ConfigView::get_optional_bool(const std::string& key) const {
  const json::Value* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_bool()) wrong_type(key, "true or false");
  return v->as_bool();
}

bool ConfigView::get_bool(const std::string& key, bool fallback) const {
  return get_optional_bool(key).value_or(fallback);
}

std::string ConfigView::get_string(const std::string& key, const std::string& fallback) const {
  const json::Value* v = get(key);
  if (!v) return fallback;
  if (!v->is_string()) wrong_type(key, "a string");
  return v->as_string();
}

std::optional<std::vector<int64_t>> ConfigView::get_optional_int_list(const std::string& key) const {
  const json::Value* v = get(key);
  if (!v) return std::nullopt;
  if (v->is_int()) return std::vector<int64_t>{v->as_int()};
  if (!v->is_array()) wrong_type(key, "an integer or a list of integers");
  std::vector<int64_t> out;
  for (const auto& item : v->as_array()) {
    if (!item.is_int()) wrong_type(key, "an integer or a list of integers");
    out.push_back(item.as_int());
  }
  return out;
}

ConfigView ConfigView::child(const std::string& key) const {
  const json::Value* v = get(key);
  if (!v) throw ConfigError(where_ + ": missing \"" + key + "\"");
  if (!v->is_object()) wrong_type(key, "an object");
  return ConfigView(*v, where_ + ": " + key);
}

WeightFiles::WeightFiles(const std::filesystem::path& directory) {
  const auto single = directory / "model.safetensors";
  const auto index_path = directory / "model.safetensors.index.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(single, ec)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single));
    for (const auto& [name, entry] : files_.back()->entries()) index_[name] = files_.back().get();
    return;
  }
  if (!std::filesystem::is_regular_file(index_path, ec)) {
    throw CheckpointError("no weights in " + directory.string() +
                          ": expected model.safetensors or model.safetensors.index.json");
  }
  json::Value index;
  try {
    index = read_json_file(index_path);
  } catch (const ConfigError& e) {
    throw CheckpointError(e.what());
  }
  const json::Value* weight_map = index.find("weight_map");
  if (!weight_map || !weight_map->is_object()) {
    throw CheckpointError(index_path.string() + " is not a valid shard index: no \"weight_map\" object");
  }
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [name, shard] : weight_map->as_object()) {
    if (!shard.is_string()) throw CheckpointError(index_path.string() + ": shard of \"" + name + "\" is not a string");
    const std::filesystem::path shard_name(shard.as_string());
    // Shards live beside the index: a path elsewhere is a corrupt (or hostile) index.
    if (shard_name.empty() || shard_name.has_parent_path() || shard_name.is_absolute()) {
      throw CheckpointError(index_path.string() + ": shard name \"" + shard.as_string() + "\" is not a plain file name");
    }
    auto it = shards.find(shard.as_string());
    if (it == shards.end()) {
      const auto path = directory / shard_name;
      if (!std::filesystem::is_regular_file(path, ec)) {
        throw CheckpointError("shard " + shard.as_string() + " listed in " + index_path.filename().string() + " is missing");
      }
      files_.push_back(std::make_unique<SafetensorsFile>(path));
      it = shards.emplace(shard.as_string(), files_.back().get()).first;
    }
    if (!it->second->contains(name)) {
      throw CheckpointError(index_path.filename().string() + " lists tensor \"" + name + "\" in " + shard.as_string() +
                            ", which does not hold it");
    }
    index_[name] = it->second;
  }
}

const SafetensorsFile::Entry& WeightFiles::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw CheckpointError("the checkpoint has no tensor \"" + name + "\"");
  return it->second->entries().at(name);
}

at::Tensor WeightFiles::load(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw CheckpointError("the checkpoint has no tensor \"" + name + "\"");
  return it->second->load(name);
}

at::Tensor WeightLoader::get(const std::string& name, std::vector<int64_t> shape) const {
  const auto& entry = files_.entry(name);
  if (c10::IntArrayRef(entry.shape) != c10::IntArrayRef(shape)) {
    throw CheckpointError("tensor \"" + name + "\" has shape " + shape_string(entry.shape) + ", the config implies " +
                          shape_string(shape));
  }
  if (!c10::isFloatingType(entry.dtype)) {
    throw CheckpointError("tensor \"" + name + "\" has non-floating dtype " + std::string(c10::toString(entry.dtype)));
  }
  return files_.load(name).to(device_, dtype_);
}

at::Tensor WeightLoader::get_first(std::initializer_list<std::string> names, std::vector<int64_t> shape) const {
  for (const auto& name : names) {
    if (files_.has(name)) return get(name, std::move(shape));
  }
  std::string list;
  for (const auto& name : names) list += (list.empty() ? "\"" : ", \"") + name + "\"";
  throw CheckpointError("the checkpoint has none of " + list);
}

}  // namespace pygen

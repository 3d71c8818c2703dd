#include "pygen/safetensors.h"

#include <ATen/ops/empty.h>

#include <algorithm>
#include <bit>
#include <fstream>

#include "json.h"
#include "pygen/error.h"

namespace pygen {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

// The safetensors library refuses headers above 100 MB; so do we, before allocating for one.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

c10::ScalarType parse_dtype(const std::string& name, const std::string& where) {
  static const std::map<std::string, c10::ScalarType> kTypes = {
      {"F64", c10::kDouble}, {"F32", c10::kFloat}, {"F16", c10::kHalf},   {"BF16", c10::kBFloat16},
      {"I64", c10::kLong},   {"I32", c10::kInt},   {"I16", c10::kShort},  {"I8", c10::kChar},
      {"U8", c10::kByte},    {"BOOL", c10::kBool},
  };
  auto it = kTypes.find(name);
  if (it == kTypes.end()) throw CheckpointError(where + " has unsupported dtype \"" + name + "\"");
  return it->second;
}

}  // namespace

SafetensorsFile::SafetensorsFile(std::filesystem::path path) : path_(std::move(path)) {
  const std::string name = path_.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path_, ec)) throw CheckpointError(name + " does not exist");
  file_size_ = std::filesystem::file_size(path_, ec);
  if (ec) throw CheckpointError("cannot read " + name + ": " + ec.message());
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw CheckpointError("cannot open " + name);
  if (file_size_ < 8) {
    throw CheckpointError(name + " is truncated (" + std::to_string(file_size_) + " bytes): not a safetensors file");
  }
  unsigned char head[8];
  in.read(reinterpret_cast<char*>(head), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | head[i];
  if (header_len == 0 || header_len > kMaxHeaderBytes || header_len > file_size_ - 8) {
    throw CheckpointError(name + " is truncated or corrupt: header of " + std::to_string(header_len) +
                          " bytes in a " + std::to_string(file_size_) + "-byte file");
  }
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  if (!in) throw CheckpointError("cannot read the header of " + name);
  data_offset_ = 8 + header_len;
  const uint64_t data_size = file_size_ - data_offset_;

  json::Value root;
  try {
    root = json::parse(header);
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(name + " is corrupt: its header is not valid JSON (" + e.what() + ")");
  }
  if (!root.is_object()) throw CheckpointError(name + " is corrupt: its header is not a JSON object");

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [key, info] : root.as_object()) {
    if (key == "__metadata__") {
      if (!info.is_object()) throw CheckpointError(name + " is corrupt: __metadata__ is not an object");
      for (const auto& [mkey, mvalue] : info.as_object()) {
        if (!mvalue.is_string()) throw CheckpointError(name + " is corrupt: __metadata__ values must be strings");
        metadata_[mkey] = mvalue.as_string();
      }
      continue;
    }
    const std::string where = name + ": tensor \"" + key + "\"";
    const json::Value* dtype = info.find("dtype");
    const json::Value* shape = info.find("shape");
    const json::Value* offsets = info.find("data_offsets");
    if (!dtype || !dtype->is_string() || !shape || !shape->is_array() || !offsets || !offsets->is_array() ||
        offsets->as_array().size() != 2) {
      throw CheckpointError(where + " has a corrupt entry (needs dtype, shape, data_offsets [begin, end])");
    }
    Entry entry;
    entry.dtype = parse_dtype(dtype->as_string(), where);
    uint64_t bytes = c10::elementSize(entry.dtype);
    for (const auto& dim : shape->as_array()) {
      if (!dim.is_int() || dim.as_int() < 0) throw CheckpointError(where + " has an invalid shape");
      entry.shape.push_back(dim.as_int());
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim.as_int()), &bytes)) {
        throw CheckpointError(where + " has a shape too large to address");
      }
    }
    const auto& off = offsets->as_array();
    if (!off[0].is_int() || !off[1].is_int() || off[0].as_int() < 0 || off[1].as_int() < off[0].as_int()) {
      throw CheckpointError(where + " has invalid data_offsets");
    }
    entry.begin = static_cast<uint64_t>(off[0].as_int());
    entry.end = static_cast<uint64_t>(off[1].as_int());
    if (entry.end - entry.begin != bytes) {
      throw CheckpointError(where + " spans " + std::to_string(entry.end - entry.begin) + " bytes but its dtype and shape need " +
                            std::to_string(bytes));
    }
    if (entry.end > data_size) {
      throw CheckpointError(name + " is truncated: tensor \"" + key + "\" ends at byte " +
                            std::to_string(data_offset_ + entry.end) + ", the file has " + std::to_string(file_size_));
    }
    if (entry.end > entry.begin) ranges.emplace_back(entry.begin, entry.end);
    entries_.emplace(key, std::move(entry));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) throw CheckpointError(name + " is corrupt: tensor data overlaps");
  }
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw CheckpointError(path_.string() + " has no tensor \"" + name + "\"");
  const Entry& e = it->second;
  at::Tensor out = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
  if (e.end == e.begin) return out;
  // A stream per call keeps concurrent loads independent; the size check catches a file that
  // shrank since the header was read.
  std::ifstream in(path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(data_offset_ + e.begin));
  in.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
  if (!in) throw CheckpointError("cannot read tensor \"" + name + "\" from " + path_.string() + ": file truncated?");
  return out;
}

}  // namespace pygen

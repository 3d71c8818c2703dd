// Reader of the safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the raw
// tensor bytes. The header is validated in full on open (sizes, offsets inside the file, no
// overlaps), so a truncated or corrupt file fails with a CheckpointError naming it, never a crash.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace pygen {

class SafetensorsFile {
 public:
  struct Entry {
    c10::ScalarType dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // byte range inside the data section
  };

  // Reads and validates the header; tensor data is read on demand by load().
  explicit SafetensorsFile(std::filesystem::path path);

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, Entry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  // A new CPU tensor with the stored dtype and shape. Safe to call from several threads.
  at::Tensor load(const std::string& name) const;

 private:
  std::filesystem::path path_;
  uint64_t data_offset_ = 0;  // 8 + header length
  uint64_t file_size_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace pygen

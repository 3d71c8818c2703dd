// A small JSON parser for config files and safetensors headers: strict RFC 8259 syntax, a depth
// limit (hostile headers must not overflow the stack), and integers kept exact up to int64.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pygen::json {

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  // A number written without fraction or exponent that fits int64 (JSON's "1.0" is not).
  bool is_int() const { return type_ == Type::kNumber && is_int_; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Accessors assume the type was checked; they are not for untrusted branching.
  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }
  double as_double() const { return double_; }
  const std::string& as_string() const { return string_; }
  const std::vector<Value>& as_array() const { return array_; }
  const std::map<std::string, Value>& as_object() const { return object_; }

  // Member `key` of an object, or nullptr (also for non-objects).
  const Value* find(const std::string& key) const;

  static const char* type_name(Type type);

 private:
  friend class Parser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  bool is_int_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<Value> array_;
  std::map<std::string, Value> object_;
};

// Parses one JSON document (surrounding whitespace allowed). Throws std::invalid_argument with
// the byte offset of the problem; callers wrap it into the error type of their context.
Value parse(std::string_view text);

}  // namespace pygen::json

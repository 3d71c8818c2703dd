// Errors of pygen's C++ API. Every failure the engine can diagnose (bad files, bad configs, bad
// inputs or options) is thrown as one of these, never an abort; the classes mirror
// pygen/errors.py so C++ and Python hosts can tell the same cases apart.
#pragma once
#include <stdexcept>
#include <string>

namespace pygen {

// Base of every pygen exception. Errors from ATen (out of memory, a device failure) that surface
// through the API are rethrown as a plain pygen::Error carrying ATen's message; so are
// std::bad_alloc ("out of memory") and any other std::exception ("unexpected error: ..."), so
// Model::load, encode, generate, parse_dtype and parse_device throw nothing but pygen::Error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A checkpoint file is missing, truncated, corrupt or inconsistent with its config.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

// config.json or generation_config.json holds an invalid value (wrong type, unknown model_type...).
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Bad input: token ids out of range, ragged or mismatched masks, unknown device or dtype.
class InputError : public Error {
 public:
  using Error::Error;
};

// Invalid generation options (lengths, beams, penalties, missing special tokens).
class GenerationError : public Error {
 public:
  using Error::Error;
};

}  // namespace pygen

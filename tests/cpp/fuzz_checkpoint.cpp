// Mutation fuzzer of the C++ checkpoint reader: config.json, generation_config.json,
// model.safetensors, model.safetensors.index.json and its shards, read by pygen::Model::load (and
// the JSON and safetensors readers directly), then a short generate() with every model that loads.
//
// Seeds are valid checkpoints: a random BART written here (single file and sharded), plus any
// checkpoint directories given on the command line (e.g. the EncoderDecoder checkpoints the Python
// tests write). Each iteration mutates one or more files of a seed -- raw bytes, JSON tokens
// replaced by interesting values, the safetensors length prefix and header -- writes the directory
// and loads it. Acceptable outcomes: success, or one of the documented pygen::Error subclasses
// (CheckpointError, ConfigError, InputError, GenerationError). Anything else is a finding: a
// plain pygen::Error (an ATen failure passed through) or another exception is reported and the
// input saved under --findings; a crash kills the process (under ASan/UBSan, with a report); a
// load + generate that takes over --hang-seconds is reported as a hang.
//
//   fuzz_checkpoint [--seconds S | --iterations N] [--seed N] [--findings DIR] [SEED_DIR ...]
//
// Exit status: 0 clean, 1 a finding, 2 bad usage. libFuzzer is not used: clang is not available on
// the development machine (see docs/cpp.md); this driver needs only the C++ compiler.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <pygen/pygen.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "checkpoint_writer.h"
#include "engine/json.h"

namespace fs = std::filesystem;
using Checkpoint = std::map<std::string, std::string>;  // file name -> bytes

namespace {

std::mt19937_64 rng;

uint64_t below(uint64_t n) { return n ? std::uniform_int_distribution<uint64_t>(0, n - 1)(rng) : 0; }
bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }
template <typename T>
const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }

const std::vector<std::string> kNumbers = {
    "0", "1", "-1", "2", "3", "4", "7", "16", "64", "65", "1024", "2147483648", "4294967296", "1099511627776",
    "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616", "1e308", "-1e308",
    "1.5", "0.0", "1e-320", "-0", "1e400", "3.0"};
const std::vector<std::string> kStrings = {
    "\"\"", "\"bart\"", "\"encoder-decoder\"", "\"bert\"", "\"roberta\"", "\"bert-generation\"", "\"gpt2\"",
    "\"never\"", "\"relu\"", "\"gelu_new\"", "\"wiggle\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"BOOL\"",
    "\"U8\"", "\"Q4\"", "\"../model.safetensors\"", "\"/etc/passwd\"", "\"model.safetensors\"",
    "\"model-00001-of-00002.safetensors\"", "\"model-00002-of-00002.safetensors\"", "\"\\u0000\"", "\"\\ud83d\\ude00\"",
    "\"model.shared.weight\"", "\"__metadata__\""};
const std::vector<std::string> kOthers = {"true", "false", "null", "[]", "{}", "[1, 2]", "[[]]", "{\"a\": 1}",
                                          "[2, 1]", "[0, 0]", "[-1]", "[1, 2, 3]"};
const std::vector<char> kBytes = {'\0', '\xff', '"', '{', '}', '[', ']', ',', ':', '-', '9', '\\', 'e', '.', ' '};

// Token spans of a JSON text: numbers, strings, literals (no validation; a scan is enough).
std::vector<std::pair<size_t, size_t>> json_tokens(const std::string& s) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, s.size());
      out.emplace_back(i, j);
      i = j;
    } else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
      size_t j = i;
      while (j < s.size() && std::strchr(",}] \n\t\r:", s[j]) == nullptr) ++j;
      out.emplace_back(i, j);
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

std::string replacement_token() {
  const double r = std::uniform_real_distribution<double>(0, 1)(rng);
  return r < 0.5 ? pick(kNumbers) : r < 0.8 ? pick(kStrings) : pick(kOthers);
}

void mutate_json(std::string& s) {
  const auto tokens = json_tokens(s);
  if (tokens.empty()) return;
  const auto [b, e] = pick(tokens);
  switch (below(4)) {
    case 0:  // swap a value for an interesting one
    case 1: s.replace(b, e - b, replacement_token()); break;
    case 2: {  // copy another token over it (keys become values and back)
      const auto [b2, e2] = pick(tokens);
      s.replace(b, e - b, s.substr(b2, e2 - b2));
      break;
    }
    default: {  // drop a token with what follows up to the next comma
      size_t end = s.find(',', e);
      s.erase(b, (end == std::string::npos ? e : end + 1) - b);
    }
  }
}

void mutate_bytes(std::string& s) {
  switch (below(7)) {
    case 0:
      if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1 << below(8));
      break;
    case 1:
      if (!s.empty()) s[below(s.size())] = pick(kBytes);
      break;
    case 2: {
      const size_t at = below(s.size() + 1);
      s.erase(at, below(std::min<size_t>(64, s.size() - at) + 1));
      break;
    }
    case 3: {
      const size_t at = below(s.size() + 1);
      std::string junk(below(16) + 1, '\0');
      for (auto& c : junk) c = static_cast<char>(below(256));
      s.insert(at, junk);
      break;
    }
    case 4: s.resize(below(s.size() + 1)); break;  // truncate
    case 5: {  // duplicate a chunk
      if (s.empty()) break;
      const size_t from = below(s.size()), len = below(std::min<size_t>(64, s.size() - from)) + 1;
      s.insert(below(s.size() + 1), s.substr(from, len));
      break;
    }
    default: s.append(below(32) + 1, static_cast<char>(below(256)));
  }
}

// The 8-byte length, the JSON header and the data of a safetensors file, mutated apart.
void mutate_safetensors(std::string& s) {
  if (s.size() < 8 || chance(0.15)) return mutate_bytes(s);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(s[i]);
  if (n > s.size() - 8) return mutate_bytes(s);
  std::string header = s.substr(8, n), data = s.substr(8 + n);
  const uint64_t r = below(10);
  if (r == 0) {  // a bad length prefix over a good header
    const std::vector<uint64_t> lengths = {0, 1, n - 1, n + 1, s.size(), s.size() - 7, 100'000'001, 1ull << 63,
                                           ~0ull};
    s = pygen_test::le64(pick(lengths)) + header + data;
    return;
  }
  if (r == 1 && !data.empty()) {  // data: weights become NaN / inf / huge or are cut short
    const std::vector<std::string> floats = {std::string("\x00\x00\xc0\x7f", 4), std::string("\x00\x00\x80\x7f", 4),
                                             std::string("\xff\xff\x7f\x7f", 4)};
    for (int k = 0; k < 8; ++k) {
      const size_t at = below(data.size() / 4) * 4;
      data.replace(at, std::min<size_t>(4, data.size() - at), pick(floats));
    }
  } else if (r == 2) {
    data.resize(below(data.size() + 1));
  } else {
    if (chance(0.8)) mutate_json(header);
    else mutate_bytes(header);
  }
  s = pygen_test::le64(chance(0.9) ? header.size() : n) + header + data;
}

void mutate(Checkpoint& ckpt) {
  std::vector<std::string> names;
  for (const auto& [name, bytes] : ckpt) names.push_back(name);
  if (chance(0.03)) {  // a file goes missing
    ckpt.erase(pick(names));
    return;
  }
  const int rounds = 1 + static_cast<int>(below(3));
  for (int k = 0; k < rounds; ++k) {
    const std::string& name = pick(names);
    std::string& bytes = ckpt[name];
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
      if (chance(0.8)) mutate_json(bytes);
      else mutate_bytes(bytes);
    } else {
      mutate_safetensors(bytes);
    }
  }
}

Checkpoint read_dir(const fs::path& dir) {
  Checkpoint c;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool wanted = name.size() > 5 && (name.compare(name.size() - 5, 5, ".json") == 0 ||
                                            name.find(".safetensors") != std::string::npos);
    if (entry.is_regular_file() && wanted) c[name] = pygen_test::read_file(entry.path());
  }
  return c;
}

void write_dir(const fs::path& dir, const Checkpoint& c) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& [name, bytes] : c) pygen_test::write_file(dir / name, bytes);
}

// What happened to one input: "ok", the pygen error class, or a finding.
struct Outcome {
  std::string kind;
  std::string message;
  bool finding = false;
};

const char* error_class(const pygen::Error& e) {
  if (dynamic_cast<const pygen::CheckpointError*>(&e)) return "CheckpointError";
  if (dynamic_cast<const pygen::ConfigError*>(&e)) return "ConfigError";
  if (dynamic_cast<const pygen::InputError*>(&e)) return "InputError";
  if (dynamic_cast<const pygen::GenerationError*>(&e)) return "GenerationError";
  return "Error";
}

template <typename F>
Outcome attempt(F&& body) {
  try {
    body();
    return {"ok", "", false};
  } catch (const pygen::Error& e) {
    // A plain pygen::Error carries an ATen (or other std) failure through: input the engine let
    // reach ATen unvalidated. Out of memory would also land here; the fuzzed models are tiny.
    const char* kind = error_class(e);
    return {kind, e.what(), std::strcmp(kind, "Error") == 0};
  } catch (const std::exception& e) {
    return {"std::exception", e.what(), true};
  } catch (...) {
    return {"unknown exception", "", true};
  }
}

// The readers on their own, then the whole load, then generation with what loaded. The options
// that scale the work (lengths, beams, returned rows) are set here, so a mutated
// generation_config.json cannot turn an iteration into minutes of legitimate work; the rest
// (special tokens, penalties, early stopping...) come from the mutated files.
Outcome run_one(const fs::path& dir, const Checkpoint& ckpt, uint64_t variant, size_t& generated) {
  for (const auto& [name, bytes] : ckpt) {
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
      try {
        pygen::json::parse(bytes);
      } catch (const std::invalid_argument&) {  // the parser's documented failure
      } catch (const std::exception& e) {
        return {"json::parse threw", e.what(), true};
      }
    } else {
      Outcome o = attempt([&] { pygen::SafetensorsFile file(dir / name); });
      if (o.finding) return o;
    }
  }
  std::optional<pygen::Model> model;
  pygen::LoadOptions load;
  if (variant % 7 == 3) load.dtype = at::kBFloat16;
  if (variant % 7 == 5) load.dtype = at::kDouble;
  Outcome o = attempt([&] { model.emplace(pygen::Model::load(dir.string(), load)); });
  if (!model) return o;
  const int64_t vocab = model->info().encoder_vocab_size;
  const std::vector<std::vector<int64_t>> batch = {{3 % vocab, 4 % vocab, 5 % vocab}, {6 % vocab}};
  pygen::GenerationOptions g;
  g.max_new_tokens = 4;
  g.num_beams = 1;
  g.num_return_sequences = 1;
  if (variant % 3 == 1) {
    g.num_beams = 2;
    g.num_return_sequences = 2;
  } else if (variant % 3 == 2) {
    g.do_sample = true;
    g.seed = variant;
  }
  ++generated;
  o = attempt([&] { model->generate(batch, g); });
  if (o.kind == "ok") o = attempt([&] { model->encode(at::full({1, 2}, 1 % vocab, at::kLong), at::ones({1, 2})); });
  return o;
}

const char* g_current_dir = nullptr;  // for the hang report
void on_alarm(int) {
  const char msg[] = "fuzz_checkpoint: HANG: one load + generate ran past --hang-seconds; the input is in ";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  if (g_current_dir) ignored = write(2, g_current_dir, std::strlen(g_current_dir));
  ignored = write(2, "\n", 1);
  (void)ignored;
  _exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0;
  uint64_t iterations = 0, seed = 1;
  unsigned hang_seconds = 60;
  fs::path findings;
  std::vector<fs::path> seed_dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--seconds") seconds = std::stod(value());
    else if (arg == "--iterations") iterations = std::stoull(value());
    else if (arg == "--seed") seed = std::stoull(value());
    else if (arg == "--findings") findings = value();
    else if (arg == "--hang-seconds") hang_seconds = static_cast<unsigned>(std::stoul(value()));
    else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "usage: fuzz_checkpoint [--seconds S | --iterations N] [--seed N] [--findings DIR] "
                           "[--hang-seconds S] [SEED_DIR ...]\n");
      return 2;
    } else {
      seed_dirs.emplace_back(arg);
    }
  }
  if (seconds <= 0 && iterations == 0) iterations = 200;
  rng.seed(seed);
  at::manual_seed(static_cast<int64_t>(seed));
  at::set_num_threads(1);

  const fs::path root = fs::temp_directory_path() / ("pygen_fuzz_checkpoint_" + std::to_string(::getpid()));
  std::vector<Checkpoint> seeds;
  pygen_test::write_bart(root / "seed_bart");
  pygen_test::write_sharded_bart(root / "seed_sharded");
  seeds.push_back(read_dir(root / "seed_bart"));
  seeds.push_back(read_dir(root / "seed_sharded"));
  for (const auto& dir : seed_dirs) {
    Checkpoint c = read_dir(dir);
    if (c.empty()) {
      std::fprintf(stderr, "no checkpoint files in %s\n", dir.string().c_str());
      return 2;
    }
    seeds.push_back(std::move(c));
  }
  // Every seed must load: otherwise the run fuzzes nothing but the first error.
  for (size_t i = 0; i < seeds.size(); ++i) {
    size_t unused = 0;
    write_dir(root / "work", seeds[i]);
    const Outcome o = run_one(root / "work", seeds[i], 0, unused);
    if (o.kind != "ok") {
      std::fprintf(stderr, "seed %zu does not load and generate: %s %s\n", i, o.kind.c_str(), o.message.c_str());
      return 2;
    }
  }

  const std::string work = (root / "work").string();
  g_current_dir = work.c_str();
  std::signal(SIGALRM, on_alarm);
  std::map<std::string, size_t> counts;
  std::set<std::string> messages;  // distinct messages, digits dropped: a rough measure of paths reached
  size_t generated = 0, done = 0;
  int status = 0;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  for (; iterations ? done < iterations : elapsed() < seconds; ++done) {
    Checkpoint input = seeds[below(seeds.size())];
    mutate(input);
    write_dir(root / "work", input);
    alarm(hang_seconds);
    const Outcome o = run_one(root / "work", input, rng(), generated);
    alarm(0);
    ++counts[o.kind];
    std::string shape;
    for (char c : o.message) if (!(c >= '0' && c <= '9')) shape += c;
    messages.insert(o.kind + ": " + shape.substr(0, 160));
    if (o.finding) {
      std::fprintf(stderr, "FINDING at iteration %zu: %s: %s\n", done, o.kind.c_str(), o.message.c_str());
      if (!findings.empty()) {
        const fs::path dest = findings / ("finding-" + std::to_string(seed) + "-" + std::to_string(done));
        write_dir(dest, input);
        std::fprintf(stderr, "input saved in %s\n", dest.string().c_str());
      }
      status = 1;
    }
  }
  fs::remove_all(root);
  std::printf("fuzz_checkpoint: %zu inputs in %.1f s (%.0f/s), seed %llu, %zu seeds, %zu generate calls, "
              "%zu distinct outcomes\n",
              done, elapsed(), done / std::max(elapsed(), 1e-9), static_cast<unsigned long long>(seed), seeds.size(),
              generated, messages.size());
  for (const auto& [kind, n] : counts) std::printf("  %-18s %zu\n", kind.c_str(), n);

  std::printf(status ? "fuzz_checkpoint: FINDINGS (see above)\n" : "fuzz_checkpoint: clean\n");
  return status;
}

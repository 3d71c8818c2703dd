// The C++ engine as a host sees it: the JSON and safetensors readers reject every kind of corrupt
// input with a pygen exception, loading reports missing/bad files and configs clearly, and one
// loaded model serves concurrent generate() calls with exactly the sequential results. The
// checkpoint is a small random BART written by this test.
#include <ATen/ATen.h>
#include <pygen/pygen.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <thread>

#include <unistd.h>

#include "check.h"
#include "checkpoint_writer.h"
#include "engine/json.h"
#include "engine/transformer.h"

namespace fs = std::filesystem;

namespace {

// Runs `body` and checks it throws E whose message contains `needle`.
template <typename E>
void expect_error(const std::function<void()>& body, const std::string& needle, const std::string& what) {
  try {
    body();
  } catch (const E& e) {
    const std::string msg = e.what();
    PYGEN_CHECK(msg.find(needle) != std::string::npos, what + ": message \"" + msg + "\" lacks \"" + needle + "\"");
    return;
  } catch (const std::exception& e) {
    PYGEN_CHECK(false, what + ": threw the wrong type: " + e.what());
  }
  PYGEN_CHECK(false, what + ": did not throw");
}

using pygen_test::le64;
using pygen_test::safetensors_bytes;
using pygen_test::write_bart;
using pygen_test::write_file;

void test_json() {
  auto v = pygen::json::parse(R"( {"a": [1, -2.5e1, true, null], "s": "x\u00e9\ud83d\ude00\n", "big": 18446744073709551616} )");
  PYGEN_CHECK(v.find("a")->as_array()[0].is_int() && v.find("a")->as_array()[0].as_int() == 1, "int");
  PYGEN_CHECK(v.find("a")->as_array()[1].as_double() == -25.0 && !v.find("a")->as_array()[1].is_int(), "double");
  PYGEN_CHECK(v.find("s")->as_string() == "x\xc3\xa9\xf0\x9f\x98\x80\n", "escapes");
  PYGEN_CHECK(!v.find("big")->is_int(), "integers beyond int64 are not ints");
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "01", "\"\\x\"", "\"\\ud800\"", "tru", "1 2", "\"a\nb\""}) {
    expect_error<std::invalid_argument>([&] { pygen::json::parse(bad); }, "invalid JSON", std::string("json ") + bad);
  }
  expect_error<std::invalid_argument>([] { pygen::json::parse(std::string(100000, '[')); }, "nesting", "deep json");
}

void test_safetensors(const fs::path& dir) {
  const auto a = at::randn({3, 5}), b = at::randn({7});
  const std::string good = safetensors_bytes({{"a", a}, {"b", b}});
  const auto path = dir / "t.safetensors";
  write_file(path, good);
  pygen::SafetensorsFile file(path);
  PYGEN_CHECK(file.entries().size() == 2 && file.contains("a"), "entries");
  PYGEN_CHECK(at::equal(file.load("a"), a) && at::equal(file.load("b"), b), "round trip");
  expect_error<pygen::CheckpointError>([&] { file.load("c"); }, "no tensor \"c\"", "missing tensor");

  const uint64_t header_len = good.size() - (3 * 5 + 7) * 4 - 8;
  const std::string header = good.substr(8, header_len);
  auto corrupt = [&](const std::string& bytes, const std::string& needle, const std::string& what) {
    write_file(path, bytes);
    expect_error<pygen::CheckpointError>([&] { pygen::SafetensorsFile f(path); }, needle, what);
  };
  corrupt("", "truncated", "empty file");
  corrupt(good.substr(0, 5), "truncated", "short file");
  corrupt(le64(1u << 20) + header, "header of 1048576 bytes", "header longer than the file");
  corrupt(le64(0) + header, "header of 0 bytes", "zero header");
  corrupt(good.substr(0, good.size() - 4), "is truncated: tensor", "data cut short");
  corrupt(le64(5) + "{abc}", "not valid JSON", "bad json");
  corrupt(le64(2) + "[]", "not a JSON object", "array header");
  auto with_header = [&](const std::string& h) { return le64(h.size()) + h + std::string(64, '\0'); };
  corrupt(with_header(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})"), "need 8", "size mismatch");
  corrupt(with_header(R"({"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})"), "unsupported dtype", "dtype");
  corrupt(with_header(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})"), "invalid shape", "shape");
  corrupt(with_header(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})"), "invalid data_offsets", "offsets");
  corrupt(with_header(R"({"x":{"dtype":"F32","shape":[1]}})"), "corrupt entry", "no offsets");
  corrupt(with_header(R"({"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}})"),
          "too large", "overflowing shape");
  corrupt(with_header(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})"),
          "overlaps", "overlap");
}

// Padding is masked out: a row encodes (and generates) the same alone and inside a ragged batch;
// the sharded copy of a checkpoint loads to the same model; int32 ids are accepted.
void test_padding_and_shards(const pygen::Model& model, const fs::path& root) {
  const std::vector<std::vector<int64_t>> batch = {{5, 6, 7, 8, 9, 2}, {10, 11, 2}};
  const auto together = model.encode(batch);
  PYGEN_CHECK(together.sizes() == at::IntArrayRef({2, 6, 16}), "encode shape");
  const auto alone = model.encode(std::vector<std::vector<int64_t>>{batch[1]});
  const double err = (together[1].narrow(0, 0, 3) - alone[0]).abs().max().item<double>();
  PYGEN_CHECK(err < 1e-5, "padding changes the encoding of a shorter row: " + std::to_string(err));
  pygen::GenerationOptions o;
  o.num_beams = 3;
  o.max_new_tokens = 8;
  const auto both = model.generate(batch, o);
  const auto single = model.generate(std::vector<std::vector<int64_t>>{batch[1]}, o);
  auto row = both.sequences[1];
  row.resize(single.sequences[0].size());
  PYGEN_CHECK(row == single.sequences[0], "padding changes a shorter row's beam search");

  at::manual_seed(0);  // the same tensors as write_bart's first call (see main)
  pygen_test::write_sharded_bart(root / "sharded");
  const auto sharded = pygen::Model::load((root / "sharded").string());
  PYGEN_CHECK(sharded.generate(batch, o).sequences == both.sequences, "sharded checkpoint differs");
  const auto ids32 = at::tensor(std::vector<int32_t>{5, 6, 7}, at::kInt).view({1, 3});
  PYGEN_CHECK(model.generate(ids32, at::ones({1, 3}), o).sequences ==
                  model.generate(std::vector<std::vector<int64_t>>{{5, 6, 7}}, o).sequences,
              "int32 ids");

  // Broken shard indexes.
  auto index = [&](const std::string& name, const std::string& text) {
    const auto dir = root / name;
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(root / "sharded")) {
      fs::copy_file(entry.path(), dir / entry.path().filename(), fs::copy_options::overwrite_existing);
    }
    write_file(dir / "model.safetensors.index.json", text);
    return dir.string();
  };
  expect_error<pygen::CheckpointError>([&] { pygen::Model::load(index("ix_escape", R"({"weight_map": {"a": "../x"}})")); },
                                       "not a plain file name", "index path escape");
  expect_error<pygen::CheckpointError>(
      [&] { pygen::Model::load(index("ix_missing", R"({"weight_map": {"a": "nowhere.safetensors"}})")); },
      "is missing", "index shard missing");
  expect_error<pygen::CheckpointError>(
      [&] { pygen::Model::load(index("ix_absent", R"({"weight_map": {"nope": "model-00001-of-00002.safetensors"}})")); },
      "does not hold it", "index tensor absent");
  expect_error<pygen::CheckpointError>([&] { pygen::Model::load(index("ix_bad", R"({"weight_map": [1]})")); },
                                       "weight_map", "index not a map");
}

void test_load_errors(const fs::path& root, const fs::path& good) {
  expect_error<pygen::CheckpointError>([&] { pygen::Model::load((root / "nowhere").string()); }, "no checkpoint directory",
                                       "missing directory");
  auto variant = [&](const std::string& name) {
    const auto dir = root / name;
    fs::create_directories(dir);
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
      fs::copy_file(good / f, dir / f, fs::copy_options::overwrite_existing);
    }
    return dir;
  };
  auto dir = variant("no_config");
  fs::remove(dir / "config.json");
  expect_error<pygen::CheckpointError>([&] { pygen::Model::load(dir.string()); }, "missing", "no config.json");
  dir = variant("no_weights");
  fs::remove(dir / "model.safetensors");
  expect_error<pygen::CheckpointError>([&] { pygen::Model::load(dir.string()); }, "no weights", "no weights");
  dir = variant("bad_json");
  write_file(dir / "config.json", "{\"model_type\": \"bart\",");
  expect_error<pygen::ConfigError>([&] { pygen::Model::load(dir.string()); }, "not valid JSON", "bad config json");
  dir = variant("unknown_type");
  write_file(dir / "config.json", R"({"model_type": "gpt2"})");
  expect_error<pygen::ConfigError>([&] { pygen::Model::load(dir.string()); }, "unsupported model_type \"gpt2\"",
                                   "unknown model_type");
  dir = variant("wrong_type");
  write_file(dir / "config.json", R"({"model_type": "bart", "d_model": "16"})");
  expect_error<pygen::ConfigError>([&] { pygen::Model::load(dir.string()); }, "\"d_model\" must be an integer",
                                   "string d_model");
  dir = variant("wrong_shape");
  write_file(dir / "config.json", R"({"model_type": "bart", "vocab_size": 50, "d_model": 16, "encoder_layers": 2,
    "decoder_layers": 2, "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32, "max_position_embeddings": 32})");
  expect_error<pygen::CheckpointError>([&] { pygen::Model::load(dir.string()); }, "the config implies [34, 16]",
                                       "shape mismatch");
  dir = variant("bad_activation");
  write_file(dir / "config.json", R"({"model_type": "bart", "vocab_size": 50, "d_model": 16, "encoder_layers": 2,
    "decoder_layers": 2, "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32, "max_position_embeddings": 64, "activation_function": "wiggle"})");
  expect_error<pygen::ConfigError>([&] { pygen::Model::load(dir.string()); }, "unsupported activation \"wiggle\"",
                                   "activation");
  dir = variant("huge_positions");
  write_file(dir / "config.json", R"({"model_type": "bart", "vocab_size": 50, "d_model": 16,
    "max_position_embeddings": 9223372036854775807})");
  expect_error<pygen::ConfigError>([&] { pygen::Model::load(dir.string()); }, "is too large", "huge positions");
  dir = variant("bad_pad");
  write_file(dir / "config.json", R"({"model_type": "bart", "vocab_size": 50, "d_model": 16, "encoder_layers": 2,
    "decoder_layers": 2, "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32, "max_position_embeddings": 64, "pad_token_id": 50})");
  expect_error<pygen::ConfigError>([&] { pygen::Model::load(dir.string()); }, "pad_token_id 50 is outside", "pad");
  dir = variant("truncated");
  fs::resize_file(dir / "model.safetensors", fs::file_size(dir / "model.safetensors") - 100);
  expect_error<pygen::CheckpointError>([&] { pygen::Model::load(dir.string()); }, "is truncated", "truncated weights");
}

void test_generate_errors(const pygen::Model& model) {
  expect_error<pygen::InputError>([&] { model.generate({{3, 4, 60}}); }, "outside the encoder vocabulary", "id range");
  expect_error<pygen::InputError>([&] { model.generate({{3, 4}, {}}); }, "sequence 1 is empty", "empty row");
  expect_error<pygen::InputError>([&] { model.generate(std::vector<std::vector<int64_t>>{}); }, "empty batch", "batch");
  expect_error<pygen::InputError>([&] { model.generate(std::vector<std::vector<int64_t>>(1, std::vector<int64_t>(70, 5))); },
                                  "beyond the model's 64 positions", "too long");
  pygen::GenerationOptions o;
  o.num_beams = 2;
  o.num_return_sequences = 3;
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}}, o); }, "must be <= num_beams", "returns");
  o = {};
  o.max_length = 1;
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}}, o); }, "max_length is 1", "max_length");
  o = {};
  o.max_length = 100;
  o.min_length = 100;  // no EOS before the 64 positions run out
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}}, o); }, "still running", "positions");
  o.num_beams = 2;
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}}, o); }, "still running", "beam positions");
  o = {};
  o.eos_token_id = std::vector<int64_t>{77};
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}}, o); }, "eos_token_id 77", "eos range");
  o = {};
  o.do_sample = true;
  o.temperature = 0.0;
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}}, o); }, "temperature", "temperature");
  // Huge values must not overflow the length / row arithmetic.
  o = {};
  o.max_new_tokens = std::numeric_limits<int64_t>::max();
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}}, o); }, "max_new_tokens", "huge max_new_tokens");
  o = {};
  o.max_new_tokens = 3;
  o.min_new_tokens = std::numeric_limits<int64_t>::max();  // only bans eos: generation runs to max_length
  PYGEN_CHECK(model.generate({{3, 4}}, o).sequences[0].size() == 4, "huge min_new_tokens");
  o = {};
  o.max_new_tokens = 3;
  o.do_sample = true;
  o.num_return_sequences = std::numeric_limits<int64_t>::max() / 2;
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}, {5}, {6}}, o); }, "overflows", "huge returns");
  o = {};
  o.num_beams = std::numeric_limits<int64_t>::max();
  o.num_return_sequences = 1;
  expect_error<pygen::GenerationError>([&] { model.generate({{3, 4}, {5}}, o); }, "overflows", "huge num_beams");
  // Tensor inputs.
  const auto mask = at::ones({1, 3}, at::kLong);
  expect_error<pygen::InputError>([&] { model.generate(at::ones({1, 3}, at::kFloat), mask); }, "must hold integers",
                                  "float ids");
  expect_error<pygen::InputError>([&] { model.generate(at::ones({1, 3}, at::kLong), at::ones({1, 4})); },
                                  "shape of input_ids", "mask shape");
  expect_error<pygen::InputError>([&] { model.generate(at::ones({3}, at::kLong), at::ones({3})); }, "[batch, length]",
                                  "1-d ids");
  expect_error<pygen::InputError>([&] { model.encode(at::ones({1, 3}, at::kLong), at::zeros({1, 3})); },
                                  "at least one unmasked token", "all masked");
  expect_error<pygen::InputError>([&] { model.encode(std::vector<std::vector<int64_t>>{{1}, {}}); },
                                  "sequence 1 is empty", "encode empty row");
  expect_error<pygen::InputError>([] { pygen::parse_dtype("int8"); }, "unknown dtype", "dtype");
  expect_error<pygen::InputError>([] { pygen::parse_device("tpu:x"); }, "unknown device", "device");
}

// The ATen fallback attention (devices without pygen kernels) agrees with the kernel.
void test_attention_fallback() {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  for (int64_t group : {1, 3}) {
    for (bool causal : {false, true}) {
      if (causal && group > 1) continue;
      const auto q = at::randn({6, causal ? 5 : 2, 4, 8}, f64);
      const auto k = at::randn({6 / group, 9, 4, 8}, f64), v = at::randn({6 / group, 9, 4, 12}, f64);
      const auto mask = at::rand({6 / group, 9}, f64) > 0.3;
      const auto want = pygen::attention(q, k, v, mask, causal, 0.3, group);
      const auto got = pygen::attention_aten(q, k, v, mask, causal, 0.3, group);
      PYGEN_CHECK((want - got).abs().max().item<double>() < 1e-10, "ATen attention fallback differs");
    }
  }
}

std::vector<pygen::GenerationOptions> option_sets() {
  pygen::GenerationOptions greedy, beam, sample;
  greedy.max_new_tokens = 12;
  beam.num_beams = 4;
  beam.num_return_sequences = 2;
  beam.max_new_tokens = 12;
  beam.no_repeat_ngram_size = 2;
  sample.do_sample = true;
  sample.seed = 7;
  sample.top_k = 10;
  sample.max_new_tokens = 12;
  sample.num_return_sequences = 2;
  return {greedy, beam, sample};
}

void test_threads(const pygen::Model& model) {
  const std::vector<std::vector<std::vector<int64_t>>> inputs = {
      {{5, 6, 7, 8, 9, 2}, {10, 11, 2}, {12, 13, 14, 15, 16, 17, 18, 2}}, {{20, 21, 22, 2}}, {{30, 31, 32, 33, 2}, {34, 2}}};
  const auto options = option_sets();
  std::map<std::pair<size_t, size_t>, pygen::GenerationResult> expected;
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (size_t o = 0; o < options.size(); ++o) expected[{i, o}] = model.generate(inputs[i], options[o]);
  }
  const auto& beam = expected[{0, 1}];
  PYGEN_CHECK(beam.sequences.size() == 6 && beam.scores.size() == 6, "beam returns 2 rows per input");
  PYGEN_CHECK(beam.scores[0] >= beam.scores[1], "beam rows are best first");
  const auto& greedy = expected[{0, 0}];
  PYGEN_CHECK(greedy.sequences[0] != beam.sequences[0], "weights should make beam differ from greedy");

  std::vector<std::string> failures(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int round = 0; round < 3; ++round) {
          for (size_t k = 0; k < inputs.size() * options.size(); ++k) {
            const size_t job = (k + t) % (inputs.size() * options.size());  // threads interleave differently
            const size_t i = job / options.size(), o = job % options.size();
            const auto got = model.generate(inputs[i], options[o]);
            const auto& want = expected.at({i, o});
            if (got.sequences != want.sequences || got.scores != want.scores) {
              failures[t] = "thread " + std::to_string(t) + " differs on input " + std::to_string(i) + " options " +
                            std::to_string(o);
              return;
            }
          }
        }
      } catch (const std::exception& e) {
        failures[t] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& failure : failures) PYGEN_CHECK(failure.empty(), failure);
}

}  // namespace

int main() {
  at::manual_seed(0);
  const fs::path root = fs::temp_directory_path() / ("pygen_test_engine_" + std::to_string(::getpid()));
  fs::create_directories(root);
  test_json();
  test_safetensors(root);
  at::manual_seed(0);
  write_bart(root / "bart");
  test_load_errors(root, root / "bart");
  const auto model = pygen::Model::load((root / "bart").string());
  PYGEN_CHECK(model.info().model_type == "bart" && model.info().vocab_size == 50, "model info");
  test_generate_errors(model);
  test_padding_and_shards(model, root);
  test_attention_fallback();
  test_threads(model);
  fs::remove_all(root);
  std::printf("test_engine: all checks passed\n");
  return 0;
}

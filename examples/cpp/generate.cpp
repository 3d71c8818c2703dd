// Reads token ids from stdin (one sequence per line, space separated), generates with a pygen
// checkpoint, and prints the generated ids (one row per line, as transformers' generate()
// returns them; with --scores, a tab and the row's score follow). With --encode it prints instead
// the encoder's last hidden state of each sequence: its length x hidden floats, position by position.
//
//   echo "0 31414 232 2" | generate MODEL_DIR [--num-beams 4] [--max-new-tokens 32] [--scores] ...
//
// Exit status: 0 done, 1 a pygen error (bad checkpoint, input or option: message on stderr),
// 2 bad usage.
//
// Options mirror transformers' generate() arguments; run with --help for the list.
#include <pygen/pygen.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char* kUsage = R"(usage: generate MODEL_DIR [options] < ids.txt
  --device D                 cpu (default), cuda, cuda:N
  --dtype T                  float32 (default), float16, bfloat16, float64
  --max-length N             --max-new-tokens N       --min-length N      --min-new-tokens N
  --num-beams N              --num-return-sequences N --length-penalty F
  --early-stopping V         true, false or never
  --do-sample                --seed N                 --temperature F     --top-k N    --top-p F
  --repetition-penalty F     --no-repeat-ngram-size N
  --forced-bos-token-id N    --forced-eos-token-id N[,N...]
  --eos-token-id N[,N...]    --pad-token-id N         --bos-token-id N    --decoder-start-token-id N
  --scores                   print each row's score after a tab
  --encode                   print the encoder's hidden states instead of generating
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int64_t to_int(const std::string& flag, const std::string& value) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size()) throw UsageError(flag + " needs an integer, got \"" + value + "\"");
  return v;
}

double to_double(const std::string& flag, const std::string& value) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size()) throw UsageError(flag + " needs a number, got \"" + value + "\"");
  return v;
}

std::vector<int64_t> to_ints(const std::string& flag, const std::string& value) {
  std::vector<int64_t> out;
  std::stringstream parts(value);
  for (std::string part; std::getline(parts, part, ',');) out.push_back(to_int(flag, part));
  if (out.empty()) throw UsageError(flag + " needs at least one id");
  return out;
}

struct Args {
  std::string model_dir;
  pygen::LoadOptions load;
  pygen::GenerationOptions generation;
  bool scores = false;
  bool encode = false;
};

Args parse_args(int argc, char** argv) {
  Args a;
  auto& g = a.generation;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") throw UsageError("");
    else if (flag == "--scores") a.scores = true;
    else if (flag == "--encode") a.encode = true;
    else if (flag == "--do-sample") g.do_sample = true;
    else if (flag == "--device") a.load.device = pygen::parse_device(value());
    else if (flag == "--dtype") a.load.dtype = pygen::parse_dtype(value());
    else if (flag == "--max-length") g.max_length = to_int(flag, value());
    else if (flag == "--max-new-tokens") g.max_new_tokens = to_int(flag, value());
    else if (flag == "--min-length") g.min_length = to_int(flag, value());
    else if (flag == "--min-new-tokens") g.min_new_tokens = to_int(flag, value());
    else if (flag == "--num-beams") g.num_beams = to_int(flag, value());
    else if (flag == "--num-return-sequences") g.num_return_sequences = to_int(flag, value());
    else if (flag == "--length-penalty") g.length_penalty = to_double(flag, value());
    else if (flag == "--seed") g.seed = static_cast<uint64_t>(to_int(flag, value()));
    else if (flag == "--temperature") g.temperature = to_double(flag, value());
    else if (flag == "--top-k") g.top_k = to_int(flag, value());
    else if (flag == "--top-p") g.top_p = to_double(flag, value());
    else if (flag == "--repetition-penalty") g.repetition_penalty = to_double(flag, value());
    else if (flag == "--no-repeat-ngram-size") g.no_repeat_ngram_size = to_int(flag, value());
    else if (flag == "--forced-bos-token-id") g.forced_bos_token_id = to_int(flag, value());
    else if (flag == "--forced-eos-token-id") g.forced_eos_token_id = to_ints(flag, value());
    else if (flag == "--eos-token-id") g.eos_token_id = to_ints(flag, value());
    else if (flag == "--pad-token-id") g.pad_token_id = to_int(flag, value());
    else if (flag == "--bos-token-id") g.bos_token_id = to_int(flag, value());
    else if (flag == "--decoder-start-token-id") g.decoder_start_token_id = to_int(flag, value());
    else if (flag == "--early-stopping") {
      const std::string v = value();
      if (v == "true") g.early_stopping = pygen::EarlyStopping::kTrue;
      else if (v == "false") g.early_stopping = pygen::EarlyStopping::kHeuristic;
      else if (v == "never") g.early_stopping = pygen::EarlyStopping::kNever;
      else throw UsageError("--early-stopping takes true, false or never");
    } else if (!flag.empty() && flag[0] == '-') {
      throw UsageError("unknown option " + flag);
    } else if (a.model_dir.empty()) {
      a.model_dir = flag;
    } else {
      throw UsageError("more than one model directory given");
    }
  }
  if (a.model_dir.empty()) throw UsageError("no model directory given");
  return a;
}

std::vector<std::vector<int64_t>> read_ids(std::istream& in) {
  std::vector<std::vector<int64_t>> batch;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::stringstream words(line);
    std::vector<int64_t> ids;
    for (std::string word; words >> word;) ids.push_back(to_int("line " + std::to_string(number), word));
    if (!ids.empty()) batch.push_back(std::move(ids));
  }
  return batch;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  std::vector<std::vector<int64_t>> batch;
  try {
    args = parse_args(argc, argv);
    batch = read_ids(std::cin);
    if (batch.empty()) throw UsageError("no input ids on stdin");
  } catch (const UsageError& e) {
    if (*e.what()) std::fprintf(stderr, "error: %s\n", e.what());
    std::fputs(kUsage, stderr);
    return 2;
  } catch (const pygen::Error& e) {  // bad --device or --dtype
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  try {
    const pygen::Model model = pygen::Model::load(args.model_dir, args.load);
    if (args.encode) {
      const auto states = model.encode(batch).to(at::kCPU, at::kDouble).contiguous();
      const double* data = states.data_ptr<double>();
      const int64_t stride = states.size(1) * states.size(2);
      for (size_t r = 0; r < batch.size(); ++r) {
        std::string line;
        char value[32];
        for (int64_t k = 0; k < static_cast<int64_t>(batch[r].size()) * states.size(2); ++k) {
          std::snprintf(value, sizeof value, "%s%.9g", k ? " " : "", data[r * stride + k]);
          line += value;
        }
        std::puts(line.c_str());
      }
      return 0;
    }
    const pygen::GenerationResult result = model.generate(batch, args.generation);
    for (size_t r = 0; r < result.sequences.size(); ++r) {
      std::string line;
      for (int64_t id : result.sequences[r]) line += (line.empty() ? "" : " ") + std::to_string(id);
      if (args.scores) {
        char score[32];
        std::snprintf(score, sizeof score, "\t%.9g", result.scores[r]);
        line += score;
      }
      std::puts(line.c_str());
    }
  } catch (const std::exception& e) {  // pygen::Error, or ATen's while printing
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

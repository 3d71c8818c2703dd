// CPU generation kernels: logits processors (one row per task), beam top-k (per-row partial
// top-k, then a per-item merge), beam bookkeeping (one batch item per task), KV-cache reorder.
// Every selection returns what torch.topk returns on CPU, ties in torch's order.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "beam_search.h"

namespace pygen {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A strict order on (value, index): larger values first (NaN first), ties by the lower index.
// Used to find candidates fast; where equal values would decide the result, the selection is
// redone with torch_topk_order below.
inline bool ranks_before(float a, int64_t ia, float b, int64_t ib) {
  const bool a_nan = a != a, b_nan = b != b;
  if (a_nan != b_nan) return a_nan;
  if (!a_nan && a != b) return a > b;
  return ia < ib;
}

// torch.topk(x, k) (largest, sorted) on CPU, ties included: ATen ranks (value, index) pairs by
// value alone (NaN first) with std::partial_sort when k * 64 <= n, else std::nth_element at k - 1
// then std::sort of the first k - 1 (ATen's TopKImpl.h). Equal values come out in the order these
// algorithms leave them, which is not index order. transformers' beam search selects with
// torch.topk, so this is what keeps ties (several forced EOS ids, -inf or -1e9 scores) identical.
// On return queue[0, k) holds the top k.
using Ranked = std::pair<float, int64_t>;

inline bool topk_before(const Ranked& x, const Ranked& y) {
  return (x.first != x.first && y.first == y.first) || x.first > y.first;
}

void torch_topk_order(std::vector<Ranked>& queue, int64_t k) {
  const int64_t n = int64_t(queue.size());
  if (k * 64 <= n) {
    std::partial_sort(queue.begin(), queue.begin() + k, queue.end(), topk_before);
  } else {
    std::nth_element(queue.begin(), queue.begin() + k - 1, queue.end(), topk_before);
    std::sort(queue.begin(), queue.begin() + k - 1, topk_before);
  }
}

// Bans of one row: tokens to set to -inf, collected then applied (out-of-vocab ids ignored).
inline void ban(float* row, int64_t vocab, int64_t token) {
  if (token >= 0 && token < vocab) row[token] = kNegInf;
}

inline bool same_tokens(const int64_t* a, const int64_t* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

void process_row(const LogitsProcessArgs& a, float* row, int64_t r, int64_t vocab) {
  if (a.forced.defined()) {  // every other processor is overridden
    std::fill(row, row + vocab, kNegInf);
    const int64_t* forced = a.forced.data_ptr<int64_t>();
    for (int64_t i = 0; i < a.forced.size(0); ++i) {
      if (forced[i] >= 0 && forced[i] < vocab) row[forced[i]] = 0.0f;
    }
    return;
  }
  const int64_t len = a.input_ids.size(1);
  const int64_t* ids = a.input_ids.data_ptr<int64_t>() + r * a.input_ids.stride(0);
  if (a.repetition_penalty != 1.0) {
    int64_t start = a.penalty_start.defined() ? a.penalty_start.data_ptr<int64_t>()[r * a.penalty_start.stride(0)] : 0;
    start = std::clamp<int64_t>(start, 0, len);
    std::vector<int64_t> seen(ids + start, ids + len);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    const float penalty = float(a.repetition_penalty);
    for (int64_t t : seen) {  // each distinct token once, from its unpenalised score
      if (t < 0 || t >= vocab) continue;
      const float v = row[t];
      row[t] = v < 0 ? v * penalty : v / penalty;
    }
  }
  const int64_t n = a.no_repeat_ngram_size;
  if (n > 0 && len >= n) {  // windows of the sequence whose first n-1 tokens equal its last n-1
    const int64_t* prefix = ids + len - n + 1;
    for (int64_t w = 0; w + n <= len; ++w) {
      if (same_tokens(ids + w, prefix, n - 1)) ban(row, vocab, ids[w + n - 1]);
    }
  }
  const int64_t en = a.encoder_no_repeat_ngram_size;
  if (en > 0 && len >= en - 1) {  // the same, over the source sequence
    const int64_t group = a.input_ids.size(0) / a.source_ids.size(0);
    const int64_t src_len = a.source_ids.size(1);
    const int64_t* src = a.source_ids.data_ptr<int64_t>() + (r / group) * a.source_ids.stride(0);
    const int64_t* prefix = ids + len - en + 1;
    for (int64_t w = 0; w + en <= src_len; ++w) {
      if (same_tokens(src + w, prefix, en - 1)) ban(row, vocab, src[w + en - 1]);
    }
  }
  if (a.bad_words.defined()) {  // a word's last token is banned when the sequence ends with the rest
    const int64_t* words = a.bad_words.data_ptr<int64_t>();
    const int64_t* off = a.bad_word_offsets.data_ptr<int64_t>();
    for (int64_t i = 0; i + 1 < a.bad_word_offsets.size(0); ++i) {
      const int64_t m = off[i + 1] - off[i];
      if (m >= 1 && m - 1 <= len && same_tokens(ids + len - (m - 1), words + off[i], m - 1)) {
        ban(row, vocab, words[off[i + 1] - 1]);
      }
    }
  }
  if (a.banned.defined()) {
    const int64_t* banned = a.banned.data_ptr<int64_t>();
    for (int64_t i = 0; i < a.banned.size(0); ++i) ban(row, vocab, banned[i]);
  }
}

}  // namespace

at::Tensor logits_process_cpu(
    const at::Tensor& logits, const at::Tensor& input_ids, bool log_softmax, double repetition_penalty,
    const std::optional<at::Tensor>& penalty_start, int64_t no_repeat_ngram_size,
    const std::optional<at::Tensor>& source_ids, int64_t encoder_no_repeat_ngram_size,
    const std::optional<at::Tensor>& bad_words, const std::optional<at::Tensor>& bad_word_offsets,
    const std::optional<at::Tensor>& banned, const std::optional<at::Tensor>& forced) {
  auto a = check_logits_process(logits, input_ids, log_softmax, repetition_penalty, penalty_start,
                                no_repeat_ngram_size, source_ids, encoder_no_repeat_ngram_size, bad_words,
                                bad_word_offsets, banned, forced);
  // The log-softmax is ATen's vectorised kernel: the very op transformers runs, so scores agree bitwise.
  at::Tensor out = log_softmax ? at::_log_softmax(logits.to(at::kFloat), 1, false)
                               : at::empty(logits.sizes(), logits.options().dtype(at::kFloat)).copy_(logits);
  const bool any = repetition_penalty != 1.0 || no_repeat_ngram_size > 0 || encoder_no_repeat_ngram_size > 0 ||
                   a.bad_words.defined() || a.banned.defined() || a.forced.defined();
  if (!any || out.numel() == 0) return out;
  const int64_t rows = out.size(0), vocab = out.size(1);
  float* data = out.data_ptr<float>();
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) process_row(a, data + r * vocab, r, vocab);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> beam_topk_cpu(const at::Tensor& scores, const at::Tensor& beam_scores,
                                                 int64_t k) {
  check_beam_topk(scores, beam_scores, k);
  const int64_t batch = beam_scores.size(0), beams = beam_scores.size(1), vocab = scores.size(1);
  // The item's top k + 1 lies in the union of its rows' top k + 1. When those k + 1 values are
  // distinct, every exact top-k agrees; otherwise the item is redone as torch.topk ranks ties.
  const int64_t row_k = std::min(k + 1, vocab);
  const int64_t merge_k = std::min(k + 1, beams * row_k);
  std::vector<float> row_val(batch * beams * row_k);
  std::vector<int64_t> row_idx(batch * beams * row_k);
  const float* base = scores.data_ptr<float>();
  const float* beam_score = beam_scores.data_ptr<float>();
  at::parallel_for(0, batch * beams, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = base + r * scores.stride(0);
      const float add = beam_score[r];
      const int64_t offset = (r % beams) * vocab;  // flat index within the item
      float* val = row_val.data() + r * row_k;
      int64_t* idx = row_idx.data() + r * row_k;
      int64_t count = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        const float x = row[v] + add;  // the float32 sum transformers ranks
        if (count == row_k) {
          const float worst = val[row_k - 1];
          if (!(x > worst || (x != x && worst == worst))) continue;  // later index loses ties
        } else {
          ++count;
        }
        int64_t p = count - 1;
        while (p > 0 && ranks_before(x, offset + v, val[p - 1], idx[p - 1])) {
          val[p] = val[p - 1];
          idx[p] = idx[p - 1];
          --p;
        }
        val[p] = x;
        idx[p] = offset + v;
      }
    }
  });
  auto values = at::empty({batch, k}, scores.options());
  auto indices = at::empty({batch, k}, scores.options().dtype(at::kLong));
  float* out_val = values.data_ptr<float>();
  int64_t* out_idx = indices.data_ptr<int64_t>();
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> order(beams * row_k);
    std::vector<Ranked> queue;
    for (int64_t b = begin; b < end; ++b) {
      const float* val = row_val.data() + b * beams * row_k;
      const int64_t* idx = row_idx.data() + b * beams * row_k;
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + merge_k, order.end(), [&](int64_t x, int64_t y) {
        return ranks_before(val[x], idx[x], val[y], idx[y]);
      });
      bool distinct = true;  // strictly decreasing, no NaN (a NaN compares false)
      for (int64_t i = 0; i + 1 < merge_k && distinct; ++i) distinct = val[order[i]] > val[order[i + 1]];
      if (distinct) {
        for (int64_t i = 0; i < k; ++i) {
          out_val[b * k + i] = val[order[i]];
          out_idx[b * k + i] = idx[order[i]];
        }
        continue;
      }
      queue.resize(beams * vocab);
      for (int64_t j = 0; j < beams; ++j) {
        const float* row = base + (b * beams + j) * scores.stride(0);
        const float add = beam_score[b * beams + j];
        for (int64_t v = 0; v < vocab; ++v) queue[j * vocab + v] = {row[v] + add, j * vocab + v};
      }
      torch_topk_order(queue, k);
      for (int64_t i = 0; i < k; ++i) {
        out_val[b * k + i] = queue[i].first;
        out_idx[b * k + i] = queue[i].second;
      }
    }
  });
  return {values, indices};
}

void beam_update_cpu(const at::Tensor& cand_scores, const at::Tensor& cand_ids, const at::Tensor& running_seqs,
                     const at::Tensor& running_scores, const at::Tensor& running_beams, const at::Tensor& seqs,
                     const at::Tensor& seq_scores, const at::Tensor& seq_beams, const at::Tensor& finished,
                     const at::Tensor& undone, const at::Tensor& next_tokens, const at::Tensor& parents,
                     const at::Tensor& done, const std::optional<at::Tensor>& eos_ids, int64_t vocab,
                     int64_t cur_len, double length_penalty, int64_t early_stopping) {
  const BeamState s = check_beam_state(running_seqs, running_scores, running_beams, seqs, seq_scores, seq_beams,
                                       finished, undone, next_tokens, parents, done);
  check_beam_candidates(s, cand_scores, cand_ids, eos_ids, vocab, cur_len);
  const BeamStep step = make_beam_step(s, vocab, cur_len, length_penalty, early_stopping);
  if (*done.data_ptr<bool>()) return;
  const int64_t nb = s.beams, k_all = cand_scores.size(1), len = s.max_length, gen = len - s.prompt_len;
  const int64_t seq_copy = cur_len + 1, beam_copy = cur_len + 1 - s.prompt_len;  // valid prefix after the step
  const bool at_max = cur_len + 1 >= s.max_length;
  const int64_t* eos = eos_ids ? eos_ids->data_ptr<int64_t>() : nullptr;
  const int64_t n_eos = eos_ids ? eos_ids->size(0) : 0;
  std::vector<char> all_finished(s.batch), all_hit(s.batch);

  at::parallel_for(0, s.batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> parent(k_all), token(k_all), order(nb), merged(nb);
    std::vector<Ranked> queue;
    std::vector<char> hit(k_all), did(k_all);
    std::vector<float> run_score(k_all), fin_score(k_all), merged_score(nb + k_all);
    std::vector<int64_t> old_run(nb * seq_copy), old_fin(nb * seq_copy);
    std::vector<int32_t> old_run_beams(nb * beam_copy), old_fin_beams(nb * beam_copy);
    std::vector<float> old_fin_score(nb);
    std::vector<char> old_fin_flag(nb);
    for (int64_t b = begin; b < end; ++b) {
      const float* cs = cand_scores.data_ptr<float>() + b * k_all;
      const int64_t* ci = cand_ids.data_ptr<int64_t>() + b * k_all;
      int64_t* run_seq = running_seqs.data_ptr<int64_t>() + b * nb * len;
      int32_t* run_beam = running_beams.data_ptr<int32_t>() + b * nb * gen;
      float* run_sc = running_scores.data_ptr<float>() + b * nb;
      int64_t* fin_seq = seqs.data_ptr<int64_t>() + b * nb * len;
      int32_t* fin_beam = seq_beams.data_ptr<int32_t>() + b * nb * gen;
      float* fin_sc = seq_scores.data_ptr<float>() + b * nb;
      bool* fin = finished.data_ptr<bool>() + b * nb;
      bool* und = undone.data_ptr<bool>() + b;

      bool every_hit = true, every_finished = true;
      for (int64_t j = 0; j < nb; ++j) every_finished = every_finished && fin[j];
      for (int64_t k = 0; k < k_all; ++k) {
        parent[k] = ci[k] / vocab;
        token[k] = ci[k] % vocab;
        bool h = at_max;
        for (int64_t e = 0; e < n_eos && !h; ++e) h = token[k] == eos[e];
        hit[k] = h;
        every_hit = every_hit && h;
        // Next running beams: candidates that hit a stopping criterion are pushed down.
        run_score[k] = cs[k] + (h ? kBeamPenalty : 0.0f);
        // Finished candidates: length-normalised; pushed out unless among the first nb and stopped,
        // while the item can still improve and (early_stopping=True) is not full.
        did[k] = h && k < nb;
        float f = cs[k] / step.finish_denom;
        f += (every_finished && step.early_stopping == kEarlyTrue) ? kBeamPenalty : 0.0f;
        f += *und ? 0.0f : kBeamPenalty;
        f += did[k] ? 0.0f : kBeamPenalty;
        fin_score[k] = f;
      }
      // Next running beams and finished hypotheses: torch.topk's picks, as transformers takes them.
      queue.resize(k_all);
      for (int64_t k = 0; k < k_all; ++k) queue[k] = {run_score[k], k};
      torch_topk_order(queue, nb);
      for (int64_t j = 0; j < nb; ++j) order[j] = queue[j].second;
      for (int64_t j = 0; j < nb; ++j) {
        merged_score[j] = fin_sc[j];
        old_fin_score[j] = fin_sc[j];
        old_fin_flag[j] = fin[j];
      }
      for (int64_t k = 0; k < k_all; ++k) merged_score[nb + k] = fin_score[k];
      queue.resize(nb + k_all);
      for (int64_t m = 0; m < nb + k_all; ++m) queue[m] = {merged_score[m], m};
      torch_topk_order(queue, nb);
      for (int64_t j = 0; j < nb; ++j) merged[j] = queue[j].second;
      // Snapshot the rows the new ones are built from (both sets are permuted in place).
      for (int64_t j = 0; j < nb; ++j) {
        std::memcpy(&old_run[j * seq_copy], run_seq + j * len, sizeof(int64_t) * cur_len);
        std::memcpy(&old_fin[j * seq_copy], fin_seq + j * len, sizeof(int64_t) * seq_copy);
        std::memcpy(&old_run_beams[j * beam_copy], run_beam + j * gen, sizeof(int32_t) * (beam_copy - 1));
        std::memcpy(&old_fin_beams[j * beam_copy], fin_beam + j * gen, sizeof(int32_t) * beam_copy);
      }
      auto write_candidate = [&](int64_t k, int64_t* seq_row, int32_t* beam_row) {
        std::memcpy(seq_row, &old_run[parent[k] * seq_copy], sizeof(int64_t) * cur_len);
        seq_row[cur_len] = token[k];
        std::memcpy(beam_row, &old_run_beams[parent[k] * beam_copy], sizeof(int32_t) * (beam_copy - 1));
        beam_row[beam_copy - 1] = int32_t(b * nb + parent[k]);
      };
      for (int64_t j = 0; j < nb; ++j) {
        const int64_t k = order[j];
        write_candidate(k, run_seq + j * len, run_beam + j * gen);
        run_sc[j] = run_score[k];
        next_tokens.data_ptr<int64_t>()[b * nb + j] = token[k];
        parents.data_ptr<int64_t>()[b * nb + j] = b * nb + parent[k];
      }
      for (int64_t j = 0; j < nb; ++j) {
        const int64_t m = merged[j];
        if (m < nb) {
          std::memcpy(fin_seq + j * len, &old_fin[m * seq_copy], sizeof(int64_t) * seq_copy);
          std::memcpy(fin_beam + j * gen, &old_fin_beams[m * beam_copy], sizeof(int32_t) * beam_copy);
          fin_sc[j] = old_fin_score[m];
          fin[j] = old_fin_flag[m];
        } else {
          write_candidate(m - nb, fin_seq + j * len, fin_beam + j * gen);
          fin_sc[j] = fin_score[m - nb];
          fin[j] = did[m - nb];
        }
      }
      // Early-stop heuristic: can the best running beam still beat the worst finished one?
      const float best = run_sc[0] / step.best_denom;
      float worst = fin_sc[0];
      bool improvable = false, now_finished = true;
      for (int64_t j = 1; j < nb; ++j) worst = std::min(worst, fin_sc[j]);
      for (int64_t j = 0; j < nb; ++j) {
        improvable = improvable || best > (fin[j] ? worst : kBeamPenalty);
        now_finished = now_finished && fin[j];
      }
      *und = *und && improvable;
      all_finished[b] = now_finished;
      all_hit[b] = every_hit;
    }
  });
  bool any_undone = false, every_finished = true, every_hit = true;
  for (int64_t b = 0; b < s.batch; ++b) {
    any_undone = any_undone || undone.data_ptr<bool>()[b];
    every_finished = every_finished && all_finished[b];
    every_hit = every_hit && all_hit[b];
  }
  const bool open = !(every_finished && step.early_stopping == kEarlyTrue);
  *done.data_ptr<bool>() = !(any_undone && open && !every_hit);
}

void reorder_rows_cpu(at::TensorList buffers, const at::Tensor& index, int64_t length) {
  std::vector<at::Tensor> bufs(buffers.begin(), buffers.end());
  check_reorder_rows(bufs, index, length);
  const int64_t rows = index.size(0);
  const int64_t* idx = index.data_ptr<int64_t>();
  std::vector<int64_t> moved;  // rows that change
  for (int64_t i = 0; i < rows; ++i) {
    TORCH_CHECK_VALUE(idx[i] >= 0 && idx[i] < rows, "reorder_rows: index ", idx[i], " out of range [0, ", rows, ")");
    if (idx[i] != i) moved.push_back(i);
  }
  if (moved.empty() || length == 0) return;
  // A source row that is itself overwritten is saved first.
  std::vector<int64_t> slot(rows, -1), saved;
  for (int64_t i : moved) {
    const int64_t src = idx[i];
    if (idx[src] != src && slot[src] < 0) {
      slot[src] = int64_t(saved.size());
      saved.push_back(src);
    }
  }
  at::parallel_for(0, int64_t(bufs.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const at::Tensor& buf = bufs[n];
      const int64_t row_bytes = buf.stride(0) * buf.element_size();
      const int64_t prefix_bytes = length * buf.stride(1) * buf.element_size();
      char* base = static_cast<char*>(buf.data_ptr());
      std::vector<char> scratch(saved.size() * prefix_bytes);
      for (size_t s = 0; s < saved.size(); ++s) {
        std::memcpy(scratch.data() + s * prefix_bytes, base + saved[s] * row_bytes, prefix_bytes);
      }
      for (int64_t i : moved) {
        const int64_t src = idx[i];
        const char* from = slot[src] >= 0 ? scratch.data() + slot[src] * prefix_bytes : base + src * row_bytes;
        std::memcpy(base + i * row_bytes, from, prefix_bytes);
      }
    }
  });
}

}  // namespace pygen

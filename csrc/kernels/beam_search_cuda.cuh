// CUDA kernel bodies of the generation ops (light includes only; launched from beam_search_cuda.cu).
//
// Arithmetic that transformers does on a float32 tensor and a Python float (length penalty,
// repetition penalty) is done with *_rn intrinsics so nvcc's fast-math and FMA contraction
// cannot change the rounding; like PyTorch's CUDA division by a CPU scalar, it multiplies by a
// reciprocal computed on the host.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pygen {
namespace cuda {

constexpr int kThreads = 256;
constexpr float kPenalty = -1.0e9f;

// One candidate of a top-k: a value and the flat index it came from.
struct Cand {
  float v;
  int64_t i;
};

// torch.topk's order: NaN first, then larger values; ties go to the lower index.
__device__ __forceinline__ bool ranks_before(const Cand& a, const Cand& b) {
  const bool a_nan = a.v != a.v, b_nan = b.v != b.v;
  if (a_nan != b_nan) return a_nan;
  if (!a_nan && a.v != b.v) return a.v > b.v;
  return a.i < b.i;
}

__device__ __forceinline__ Cand better(const Cand& a, const Cand& b) { return ranks_before(b, a) ? b : a; }

// Block-wide best candidate (all threads get it). `shared` holds one Cand per warp.
__device__ Cand block_best(Cand c, Cand* shared) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    Cand o{__shfl_down_sync(0xffffffffu, c.v, offset), __shfl_down_sync(0xffffffffu, c.i, offset)};
    c = better(c, o);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) shared[warp] = c;
  __syncthreads();
  if (warp == 0) {
    const int warps = (blockDim.x + 31) / 32;
    c = lane < warps ? shared[lane] : Cand{-__int_as_float(0x7f800000), INT64_MAX};
    for (int offset = 16; offset > 0; offset >>= 1) {
      Cand o{__shfl_down_sync(0xffffffffu, c.v, offset), __shfl_down_sync(0xffffffffu, c.i, offset)};
      c = better(c, o);
    }
    if (lane == 0) shared[0] = c;
  }
  __syncthreads();
  Cand out = shared[0];
  __syncthreads();
  return out;
}

__device__ float block_reduce(float x, float* shared, bool is_max) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float o = __shfl_down_sync(0xffffffffu, x, offset);
    x = is_max ? fmaxf(x, o) : x + o;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  if (warp == 0) {
    const int warps = (blockDim.x + 31) / 32;
    x = lane < warps ? shared[lane] : (is_max ? -__int_as_float(0x7f800000) : 0.0f);
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float o = __shfl_down_sync(0xffffffffu, x, offset);
      x = is_max ? fmaxf(x, o) : x + o;
    }
    if (lane == 0) shared[0] = x;
  }
  __syncthreads();
  const float out = shared[0];
  __syncthreads();
  return out;
}

// ---- logits processors: one block per row ----------------------------------------------------
struct ProcessParams {
  int64_t rows, vocab, len, ids_stride, logits_stride;
  const int64_t* ids;
  bool log_softmax;
  bool penalise;
  float penalty, inv_penalty;
  const int64_t* penalty_start;
  int64_t ngram;
  const int64_t* source;
  int64_t source_rows, source_len, source_stride, encoder_ngram;
  const int64_t* bad_words;
  const int64_t* bad_offsets;
  int64_t n_bad;
  const int64_t* banned;
  int64_t n_banned;
  const int64_t* forced;
  int64_t n_forced;
};

__device__ __forceinline__ bool same_tokens(const int64_t* a, const int64_t* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

__device__ __forceinline__ void ban(float* row, int64_t vocab, int64_t token) {
  if (token >= 0 && token < vocab) row[token] = -__int_as_float(0x7f800000);
}

template <typename scalar_t>
__global__ void logits_process_kernel(ProcessParams p, const scalar_t* __restrict__ logits, float* __restrict__ out) {
  __shared__ float shared[32];
  const int64_t r = blockIdx.x;
  float* row = out + r * p.vocab;
  const float neg_inf = -__int_as_float(0x7f800000);
  if (p.forced) {  // every other processor is overridden
    for (int64_t v = threadIdx.x; v < p.vocab; v += blockDim.x) row[v] = neg_inf;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < p.n_forced; i += blockDim.x) {
      if (p.forced[i] >= 0 && p.forced[i] < p.vocab) row[p.forced[i]] = 0.0f;
    }
    return;
  }
  const scalar_t* in = logits + r * p.logits_stride;
  if (p.log_softmax) {
    float mx = neg_inf;
    for (int64_t v = threadIdx.x; v < p.vocab; v += blockDim.x) mx = fmaxf(mx, float(in[v]));
    mx = block_reduce(mx, shared, true);
    float sum = 0.0f;
    for (int64_t v = threadIdx.x; v < p.vocab; v += blockDim.x) sum += expf(float(in[v]) - mx);
    const float logsum = logf(block_reduce(sum, shared, false));
    for (int64_t v = threadIdx.x; v < p.vocab; v += blockDim.x) row[v] = (float(in[v]) - mx) - logsum;
  } else {
    for (int64_t v = threadIdx.x; v < p.vocab; v += blockDim.x) row[v] = float(in[v]);
  }
  __syncthreads();
  const int64_t* ids = p.ids + r * p.ids_stride;
  const int64_t len = p.len;
  if (p.penalise) {  // each distinct token once: the thread at its first occurrence
    int64_t start = p.penalty_start ? p.penalty_start[r] : 0;
    start = start < 0 ? 0 : (start > len ? len : start);
    for (int64_t pos = start + threadIdx.x; pos < len; pos += blockDim.x) {
      const int64_t t = ids[pos];
      bool first = t >= 0 && t < p.vocab;
      for (int64_t q = start; q < pos && first; ++q) first = ids[q] != t;
      if (first) {
        const float v = row[t];
        row[t] = v < 0 ? __fmul_rn(v, p.penalty) : __fmul_rn(v, p.inv_penalty);
      }
    }
    __syncthreads();
  }
  const int64_t n = p.ngram;
  if (n > 0 && len >= n) {
    const int64_t* prefix = ids + len - n + 1;
    for (int64_t w = threadIdx.x; w + n <= len; w += blockDim.x) {
      if (same_tokens(ids + w, prefix, n - 1)) ban(row, p.vocab, ids[w + n - 1]);
    }
  }
  const int64_t en = p.encoder_ngram;
  if (en > 0 && len >= en - 1) {
    const int64_t* src = p.source + (r / (p.rows / p.source_rows)) * p.source_stride;
    const int64_t* prefix = ids + len - en + 1;
    for (int64_t w = threadIdx.x; w + en <= p.source_len; w += blockDim.x) {
      if (same_tokens(src + w, prefix, en - 1)) ban(row, p.vocab, src[w + en - 1]);
    }
  }
  for (int64_t i = threadIdx.x; i < p.n_bad; i += blockDim.x) {
    const int64_t begin = p.bad_offsets[i], m = p.bad_offsets[i + 1] - begin;
    if (m >= 1 && m - 1 <= len && same_tokens(ids + len - (m - 1), p.bad_words + begin, m - 1)) {
      ban(row, p.vocab, p.bad_words[begin + m - 1]);
    }
  }
  for (int64_t i = threadIdx.x; i < p.n_banned; i += blockDim.x) ban(row, p.vocab, p.banned[i]);
}

// ---- beam top-k --------------------------------------------------------------------------------
// k rounds of a block-wide "best candidate ranked after the previous pick": exact torch.topk
// order, ties included, with no per-thread candidate lists.
template <typename Load>
__device__ void block_topk(int64_t n, int64_t k, Cand* shared, Load load, Cand* out) {
  Cand prev{0.0f, -1};
  for (int64_t round = 0; round < k; ++round) {
    Cand best{-__int_as_float(0x7f800000), INT64_MAX};
    bool any = false;
    for (int64_t x = threadIdx.x; x < n; x += blockDim.x) {
      const Cand c = load(x);
      if (round > 0 && !ranks_before(prev, c)) continue;
      if (!any || ranks_before(c, best)) best = c;
      any = true;
    }
    prev = block_best(best, shared);
    if (threadIdx.x == 0) out[round] = prev;
  }
}

// Per row: its best k of score + beam score, indexed within the item (beam * vocab + token).
__global__ void beam_row_topk_kernel(const float* __restrict__ scores, int64_t stride, const float* __restrict__ beam_scores,
                                     int64_t beams, int64_t vocab, int64_t k, Cand* __restrict__ out) {
  __shared__ Cand shared[32];
  const int64_t r = blockIdx.x;
  const float* row = scores + r * stride;
  const float add = beam_scores[r];
  const int64_t offset = (r % beams) * vocab;
  block_topk(vocab, k, shared, [&](int64_t v) { return Cand{__fadd_rn(row[v], add), offset + v}; }, out + r * k);
}

// Per item: the best k of its rows' candidates.
__global__ void beam_merge_topk_kernel(const Cand* __restrict__ rows, int64_t n, int64_t k, Cand* __restrict__ out) {
  __shared__ Cand shared[32];
  const Cand* cands = rows + blockIdx.x * n;
  block_topk(n, k, shared, [&](int64_t x) { return cands[x]; }, out + blockIdx.x * k);
}

// Cand [B, k] -> values [B, k] and indices [B, k].
__global__ void split_cands_kernel(const Cand* __restrict__ cands, int64_t n, float* __restrict__ values,
                                   int64_t* __restrict__ indices) {
  const int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (x < n) {
    values[x] = cands[x].v;
    indices[x] = cands[x].i;
  }
}

// ---- beam bookkeeping: one block per batch item ------------------------------------------------
struct UpdateParams {
  const float* cand_scores;
  const int64_t* cand_ids;
  int64_t* running_seqs;
  float* running_scores;
  int32_t* running_beams;
  int64_t* seqs;
  float* seq_scores;
  int32_t* seq_beams;
  bool* finished;
  bool* undone;
  int64_t* next_tokens;
  int64_t* parents;
  const bool* done;
  const int64_t* eos;
  int64_t n_eos;
  // scratch copies of the rows being permuted: [B, nb, cur_len + 1] and [B, nb, cur_len + 1 - P]
  int64_t* old_run;
  int64_t* old_fin;
  int32_t* old_run_beams;
  int32_t* old_fin_beams;
  bool* item_finished;  // [B] out: all hypotheses finished
  bool* item_hit;       // [B] out: every candidate stopped
  int64_t beams, k, vocab, cur_len, max_length, prompt_len, early_stopping;
  float inv_finish_denom, inv_best_denom;
};

__global__ void beam_update_kernel(UpdateParams p) {
  extern __shared__ unsigned char smem[];
  const int64_t b = blockIdx.x, nb = p.beams, K = p.k;
  if (*p.done) return;
  int64_t* parent = reinterpret_cast<int64_t*>(smem);  // [K]
  int64_t* token = parent + K;                          // [K]
  int64_t* pick = token + K;                            // [nb] candidates that run on
  int64_t* keep = pick + nb;                            // [nb] merged entries kept as finished
  float* run_score = reinterpret_cast<float*>(keep + nb);  // [K]
  float* fin_score = run_score + K;                        // [K]
  float* old_score = fin_score + K;                        // [nb]
  bool* hit = reinterpret_cast<bool*>(old_score + nb);     // [K]
  bool* old_flag = hit + K;                                // [nb]

  const int64_t len = p.max_length, gen = len - p.prompt_len, cur = p.cur_len;
  const int64_t seq_copy = cur + 1, beam_copy = cur + 1 - p.prompt_len;
  int64_t* run_seq = p.running_seqs + b * nb * len;
  int32_t* run_beam = p.running_beams + b * nb * gen;
  int64_t* fin_seq = p.seqs + b * nb * len;
  int32_t* fin_beam = p.seq_beams + b * nb * gen;
  float* fin_sc = p.seq_scores + b * nb;
  bool* fin = p.finished + b * nb;

  if (threadIdx.x == 0) {
    const float* cs = p.cand_scores + b * K;
    const int64_t* ci = p.cand_ids + b * K;
    bool every_finished = true, every_hit = true;
    for (int64_t j = 0; j < nb; ++j) every_finished = every_finished && fin[j];
    const bool full = every_finished && p.early_stopping == 1;
    const bool und = p.undone[b];
    for (int64_t k = 0; k < K; ++k) {
      parent[k] = ci[k] / p.vocab;
      token[k] = ci[k] % p.vocab;
      bool h = cur + 1 >= p.max_length;
      for (int64_t e = 0; e < p.n_eos && !h; ++e) h = token[k] == p.eos[e];
      hit[k] = h;
      every_hit = every_hit && h;
      run_score[k] = __fadd_rn(cs[k], h ? kPenalty : 0.0f);
      float f = __fmul_rn(cs[k], p.inv_finish_denom);
      f = __fadd_rn(f, full ? kPenalty : 0.0f);
      f = __fadd_rn(f, und ? 0.0f : kPenalty);
      f = __fadd_rn(f, (h && k < nb) ? 0.0f : kPenalty);
      fin_score[k] = f;
    }
    // Selection by repeated "best not taken yet" (K and nb are small).
    for (int64_t j = 0; j < nb; ++j) {
      int64_t best = -1;
      for (int64_t k = 0; k < K; ++k) {
        bool taken = false;
        for (int64_t q = 0; q < j && !taken; ++q) taken = pick[q] == k;
        if (!taken && (best < 0 || ranks_before(Cand{run_score[k], k}, Cand{run_score[best], best}))) best = k;
      }
      pick[j] = best;
    }
    for (int64_t j = 0; j < nb; ++j) {
      old_score[j] = fin_sc[j];
      old_flag[j] = fin[j];
    }
    for (int64_t j = 0; j < nb; ++j) {
      int64_t best = -1;
      float best_v = 0.0f;
      for (int64_t m = 0; m < nb + K; ++m) {
        bool taken = false;
        for (int64_t q = 0; q < j && !taken; ++q) taken = keep[q] == m;
        const float v = m < nb ? old_score[m] : fin_score[m - nb];
        if (!taken && (best < 0 || ranks_before(Cand{v, m}, Cand{best_v, best}))) {
          best = m;
          best_v = v;
        }
      }
      keep[j] = best;
    }
    p.item_hit[b] = every_hit;
  }
  // Snapshot the rows the new ones are built from.
  int64_t* old_run = p.old_run + b * nb * seq_copy;
  int64_t* old_fin = p.old_fin + b * nb * seq_copy;
  int32_t* old_run_beams = p.old_run_beams + b * nb * beam_copy;
  int32_t* old_fin_beams = p.old_fin_beams + b * nb * beam_copy;
  for (int64_t x = threadIdx.x; x < nb * seq_copy; x += blockDim.x) {
    const int64_t j = x / seq_copy, c = x % seq_copy;
    if (c < cur) old_run[x] = run_seq[j * len + c];
    old_fin[x] = fin_seq[j * len + c];
  }
  for (int64_t x = threadIdx.x; x < nb * beam_copy; x += blockDim.x) {
    const int64_t j = x / beam_copy, c = x % beam_copy;
    if (c < beam_copy - 1) old_run_beams[x] = run_beam[j * gen + c];
    old_fin_beams[x] = fin_beam[j * gen + c];
  }
  __syncthreads();
  // New running rows, then new finished rows: prefix of the parent plus the new token.
  for (int64_t x = threadIdx.x; x < 2 * nb * seq_copy; x += blockDim.x) {
    const bool finished_row = x >= nb * seq_copy;
    const int64_t y = finished_row ? x - nb * seq_copy : x, j = y / seq_copy, c = y % seq_copy;
    int64_t value;
    if (finished_row && keep[j] < nb) {
      value = old_fin[keep[j] * seq_copy + c];
    } else {
      const int64_t k = finished_row ? keep[j] - nb : pick[j];
      value = c < cur ? old_run[parent[k] * seq_copy + c] : token[k];
    }
    (finished_row ? fin_seq : run_seq)[j * len + c] = value;
  }
  for (int64_t x = threadIdx.x; x < 2 * nb * beam_copy; x += blockDim.x) {
    const bool finished_row = x >= nb * beam_copy;
    const int64_t y = finished_row ? x - nb * beam_copy : x, j = y / beam_copy, c = y % beam_copy;
    int32_t value;
    if (finished_row && keep[j] < nb) {
      value = old_fin_beams[keep[j] * beam_copy + c];
    } else {
      const int64_t k = finished_row ? keep[j] - nb : pick[j];
      value = c < beam_copy - 1 ? old_run_beams[parent[k] * beam_copy + c] : int32_t(b * nb + parent[k]);
    }
    (finished_row ? fin_beam : run_beam)[j * gen + c] = value;
  }
  if (threadIdx.x == 0) {
    float* run_sc = p.running_scores + b * nb;
    for (int64_t j = 0; j < nb; ++j) {
      const int64_t k = pick[j];
      run_sc[j] = run_score[k];
      p.next_tokens[b * nb + j] = token[k];
      p.parents[b * nb + j] = b * nb + parent[k];
      const int64_t m = keep[j];
      fin_sc[j] = m < nb ? old_score[m] : fin_score[m - nb];
      fin[j] = m < nb ? old_flag[m] : (hit[m - nb] && m - nb < nb);
    }
    // Early-stop heuristic: can the best running beam still beat the worst finished one?
    const float best = __fmul_rn(run_sc[0], p.inv_best_denom);
    float worst = fin_sc[0];
    bool improvable = false, now_finished = true;
    for (int64_t j = 1; j < nb; ++j) worst = fminf(worst, fin_sc[j]);
    for (int64_t j = 0; j < nb; ++j) {
      improvable = improvable || best > (fin[j] ? worst : kPenalty);
      now_finished = now_finished && fin[j];
    }
    p.undone[b] = p.undone[b] && improvable;
    p.item_finished[b] = now_finished;
  }
}

__global__ void beam_done_kernel(const bool* undone, const bool* item_finished, const bool* item_hit, int64_t batch,
                                 int64_t early_stopping, bool* done) {
  if (*done) return;
  bool any_undone = false, every_finished = true, every_hit = true;
  for (int64_t b = 0; b < batch; ++b) {
    any_undone = any_undone || undone[b];
    every_finished = every_finished && item_finished[b];
    every_hit = every_hit && item_hit[b];
  }
  const bool open = !(every_finished && early_stopping == 1);
  *done = !(any_undone && open && !every_hit);
}

// ---- KV-cache reorder -------------------------------------------------------------------------
constexpr int kMaxBuffers = 64;

struct ReorderParams {
  char* base[kMaxBuffers];
  int64_t row_bytes[kMaxBuffers];
  int64_t prefix_bytes[kMaxBuffers];  // the `length` positions of a row
  int64_t scratch_offset[kMaxBuffers];
  const int64_t* index;
  char* scratch;  // per buffer [rows, prefix_bytes]
  bool vectorised;  // every base, row and prefix is a multiple of 16 bytes
};

// Stage 0 copies the source of every moved row to scratch, stage 1 writes it back to the row.
__global__ void reorder_rows_kernel(ReorderParams p, int stage) {
  const int64_t i = blockIdx.y, n = blockIdx.z;
  const int64_t src = p.index[i], bytes = p.prefix_bytes[n];
  if (src == i) return;
  char* scratch = p.scratch + p.scratch_offset[n] + i * bytes;
  const char* from = stage == 0 ? p.base[n] + src * p.row_bytes[n] : scratch;
  char* to = stage == 0 ? scratch : p.base[n] + i * p.row_bytes[n];
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  if (p.vectorised) {
    const int4* f = reinterpret_cast<const int4*>(from);
    int4* t = reinterpret_cast<int4*>(to);
    for (int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; x < bytes / 16; x += step) t[x] = f[x];
  } else {
    for (int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; x < bytes; x += step) to[x] = from[x];
  }
}

}  // namespace cuda
}  // namespace pygen

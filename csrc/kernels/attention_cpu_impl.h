// CPU attention kernel bodies, compiled twice by attention_cpu.cpp (see cpu_isa.h), hence no
// include guard. Needs attention_params.h, ATen/Parallel.h, c10 Half and BFloat16, <algorithm>,
// <cmath>, <limits>, <vector> and cpu_isa.h first.
//
// Layout of the work: the query rows of one (kv batch, head) pair are the kv_group * q_len rows
// of the beams that share its keys (see AttentionParams), so shared keys are read once.
//  - prefill (many rows): tiles of S^T = K Q^T, BK keys x BQ queries, with Q^T packed once per
//    task; the online softmax then runs down columns with vertical vector ops, and O += P V
//    reads V rows in place. Scores never exist beyond one BK x BQ tile.
//  - decode (few rows): scores as dot products against K rows in place, the same online
//    softmax along rows, O += P V; long KV splits into chunks whose partial results merge.
//  - backward: one task per (kv batch, head), recomputing P from the saved log-sum-exp.
#include "cpu_vec_impl.h"

constexpr int64_t kBQ = 96;  // query rows per prefill task (16 x the 6-row register tile)
constexpr int64_t kBK = 96;  // keys per tile
constexpr int64_t kDecodeRows = 8;  // at most this many rows per (kv batch, head): decode path
constexpr int64_t kDecodeChunk = 128;
// |lse| above which the backward recomputes a row's max and sum: m + log(l) then carries
// log(l) only to about kExactLse * epsilon (float: 1.5e-5 relative in P).
template <typename acc_t>
constexpr acc_t kExactLse = acc_t(256);

// e^x for x <= 0 (all softmax needs): Cody-Waite reduction to |r| <= ln2/2, degree-7 Taylor
// polynomial (truncation error ~5e-9), times 2^n built in the exponent bits. x < -87 (and -inf)
// gives 0, which also keeps 2^n a normal number.
inline Vec<float> exp_nonpos(Vec<float> x) {
  typedef int32_t VecI __attribute__((vector_size(kVecBytes)));
  const Vec<float> magic = vbcast(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const Vec<float> t = x * 1.44269504088896341f + magic;
  const Vec<float> n = t - magic;
  const Vec<float> r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  Vec<float> poly = vbcast(1.f / 5040);
  poly = poly * r + 1.f / 720;
  poly = poly * r + 1.f / 120;
  poly = poly * r + 1.f / 24;
  poly = poly * r + 1.f / 6;
  poly = poly * r + 0.5f;
  poly = poly * r + 1.f;
  poly = poly * r + 1.f;
  const VecI two_n = (((VecI)t - (VecI)magic) + 127) << 23;
  return x < vbcast(-87.0f) ? Vec<float>{} : poly * (Vec<float>)two_n;
}
inline Vec<double> exp_nonpos(Vec<double> x) {  // double serves tests (gradcheck): exact exp
  for (int i = 0; i < kLanes<double>; ++i) x[i] = std::exp(x[i]);
  return x;
}

// C[m, n] (+)= A[m, kk] B[kk, n]. A(i, p) = a[i * a_rs + p * a_cs] with any strides (its
// elements are broadcast), B and C row-major. Register tiles of MR rows x 2 vectors.
template <int MR, typename T>
inline void gemm_rows(int64_t n, int64_t kk, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
                      int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  constexpr int L = kLanes<T>;
  // Tiles of 1-2 rows have too few FMA chains to hide the FMA latency: alternate two sets.
  constexpr int S = MR <= 2 ? 2 : 1;
  int64_t j = 0;
  for (; j + 2 * L <= n; j += 2 * L) {
    Vec<T> acc0[S][MR], acc1[S][MR];
    for (int r = 0; r < MR; ++r) {
      acc0[0][r] = accumulate ? vload(c + r * ldc + j) : Vec<T>{};
      acc1[0][r] = accumulate ? vload(c + r * ldc + j + L) : Vec<T>{};
      for (int u = 1; u < S; ++u) acc0[u][r] = acc1[u][r] = Vec<T>{};
    }
    int64_t p = 0;
    auto step = [&](int u, int64_t p) {
      const Vec<T> b0 = vload(b + p * ldb + j), b1 = vload(b + p * ldb + j + L);
      for (int r = 0; r < MR; ++r) {
        const Vec<T> ar = vbcast(a[r * a_rs + p * a_cs]);
        acc0[u][r] += ar * b0;
        acc1[u][r] += ar * b1;
      }
    };
    for (; p + S <= kk; p += S)
      for (int u = 0; u < S; ++u) step(u, p + u);
    for (; p < kk; ++p) step(0, p);
    for (int r = 0; r < MR; ++r) {
      for (int u = 1; u < S; ++u) {
        acc0[0][r] += acc0[u][r];
        acc1[0][r] += acc1[u][r];
      }
      vstore(c + r * ldc + j, acc0[0][r]);
      vstore(c + r * ldc + j + L, acc1[0][r]);
    }
  }
  if (j + L <= n) {
    Vec<T> acc[MR];
    for (int r = 0; r < MR; ++r) acc[r] = accumulate ? vload(c + r * ldc + j) : Vec<T>{};
    for (int64_t p = 0; p < kk; ++p) {
      const Vec<T> b0 = vload(b + p * ldb + j);
      for (int r = 0; r < MR; ++r) acc[r] += vbcast(a[r * a_rs + p * a_cs]) * b0;
    }
    for (int r = 0; r < MR; ++r) vstore(c + r * ldc + j, acc[r]);
    j += L;
  }
  for (; j < n; ++j) {  // head dims that are not a multiple of the vector width
    for (int r = 0; r < MR; ++r) {
      T s = accumulate ? c[r * ldc + j] : T(0);
      for (int64_t p = 0; p < kk; ++p) s += a[r * a_rs + p * a_cs] * b[p * ldb + j];
      c[r * ldc + j] = s;
    }
  }
}

template <typename T>
void gemm(int64_t m, int64_t n, int64_t kk, const T* a, int64_t a_rs, int64_t a_cs, const T* b,
          int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  constexpr int MR = 6;  // 12 accumulators + 2 B vectors + 1 broadcast fit 16 vector registers
  int64_t i = 0;
  for (; i + MR <= m; i += MR)
    gemm_rows<MR>(n, kk, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc, accumulate);
  const T* ai = a + i * a_rs;
  T* ci = c + i * ldc;
  switch (m - i) {
    case 5: gemm_rows<5>(n, kk, ai, a_rs, a_cs, b, ldb, ci, ldc, accumulate); break;
    case 4: gemm_rows<4>(n, kk, ai, a_rs, a_cs, b, ldb, ci, ldc, accumulate); break;
    case 3: gemm_rows<3>(n, kk, ai, a_rs, a_cs, b, ldb, ci, ldc, accumulate); break;
    case 2: gemm_rows<2>(n, kk, ai, a_rs, a_cs, b, ldb, ci, ldc, accumulate); break;
    case 1: gemm_rows<1>(n, kk, ai, a_rs, a_cs, b, ldb, ci, ldc, accumulate); break;
    default: break;
  }
}

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows of a strided [*, len, heads, dim] tensor as dense acc_t rows: in place when the types
// agree and the rows are already adjacent, else copied (converted) into a scratch buffer.
// Returns the pointer and sets the row stride. Copying a K or V tile costs ~1/kBQ of the
// arithmetic done on it, and saves a lot when heads * dim * sizeof(acc_t) is a multiple of
// 4 KiB (H=16, D=64 fp32): every row of an in-place tile then maps to the same few L1 sets, and
// the products, which re-read the tile's rows, miss L1 on nearly every load (B=1 H=16 L=1024
// D=64 prefill: 30 % faster packed).
template <typename scalar_t, typename acc_t>
bool rows_usable_in_place(int64_t src_ld, int64_t n, int64_t d) {
  return std::is_same_v<scalar_t, acc_t> && (src_ld == d || n <= 1);
}

template <typename scalar_t, typename acc_t>
const acc_t* rows_as_acc(const scalar_t* src, int64_t src_ld, int64_t n, int64_t d, std::vector<acc_t>& buf,
                         int64_t& ld) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    if (rows_usable_in_place<scalar_t, acc_t>(src_ld, n, d)) {
      ld = src_ld;
      return src;
    }
    buf.resize(n * d);
    for (int64_t j = 0; j < n; ++j) std::memcpy(buf.data() + j * d, src + j * src_ld, d * sizeof(acc_t));
    ld = d;
    return buf.data();
  } else {
    buf.resize(n * d);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t x = 0; x < d; ++x) buf[j * d + x] = acc_t(src[j * src_ld + x]);
    ld = d;
    return buf.data();
  }
}

// Per-call addressing shared by the kernels.
template <typename scalar_t, typename acc_t>
struct Problem {
  const AttentionParams& p;
  const scalar_t *q, *k, *v;
  const acc_t* bias;
  scalar_t* out;
  acc_t* lse;
  int64_t rows;  // query rows per (kv batch, head): kv_group * q_len

  explicit Problem(const AttentionParams& prm)
      : p(prm),
        q(static_cast<const scalar_t*>(prm.q)),
        k(static_cast<const scalar_t*>(prm.k)),
        v(static_cast<const scalar_t*>(prm.v)),
        bias(static_cast<const acc_t*>(prm.bias)),
        out(static_cast<scalar_t*>(prm.out)),
        lse(static_cast<acc_t*>(prm.lse)),
        rows(prm.kv_group * prm.q_len) {}

  int64_t batch_of(int64_t kb, int64_t r) const { return kb * p.kv_group + r / p.q_len; }
  int64_t pos_of(int64_t r) const { return r % p.q_len; }
  const scalar_t* q_row(int64_t kb, int64_t h, int64_t r) const {
    return q + batch_of(kb, r) * p.q_stride[0] + pos_of(r) * p.q_stride[1] + h * p.q_stride[2];
  }
  const scalar_t* k_row(int64_t kb, int64_t h, int64_t j) const {
    return k + kb * p.k_stride[0] + j * p.k_stride[1] + h * p.k_stride[2];
  }
  const scalar_t* v_row(int64_t kb, int64_t h, int64_t j) const {
    return v + kb * p.v_stride[0] + j * p.v_stride[1] + h * p.v_stride[2];
  }
  int64_t out_offset(int64_t kb, int64_t h, int64_t r) const {  // rows of out / grad_out
    return ((batch_of(kb, r) * p.q_len + pos_of(r)) * p.heads + h) * p.v_dim;
  }
  int64_t lse_offset(int64_t kb, int64_t h, int64_t r) const {
    return (batch_of(kb, r) * p.heads + h) * p.q_len + pos_of(r);
  }
  // Last key row r may see (causal is bottom-right aligned).
  int64_t last_key(int64_t r) const {
    return p.causal ? std::min(p.kv_len, pos_of(r) + p.kv_len - p.q_len + 1) - 1 : p.kv_len - 1;
  }
  int64_t bias_offset(int64_t kb, int64_t h, int64_t r) const {
    return batch_of(kb, r) * p.bias_stride[0] + h * p.bias_stride[1] + pos_of(r) * p.bias_stride[2];
  }
  bool any_visible(int64_t kb, int64_t j0, int64_t n) const {
    if (!p.mask) return true;
    const bool* m = p.mask + kb * p.kv_len + j0;
    return std::any_of(m, m + n, [](bool x) { return x; });
  }
};

// Row-by-row final write: out = o / l (0 when no key was visible), lse = m + log l.
template <typename scalar_t, typename acc_t>
void write_row(const Problem<scalar_t, acc_t>& P, int64_t kb, int64_t h, int64_t r, const acc_t* o,
               acc_t m, acc_t l) {
  scalar_t* dst = P.out + P.out_offset(kb, h, r);
  const acc_t inv = l > 0 ? acc_t(1) / l : acc_t(0);
  for (int64_t x = 0; x < P.p.v_dim; ++x) dst[x] = scalar_t(o[x] * inv);
  P.lse[P.lse_offset(kb, h, r)] = l > 0 ? m + std::log(l) : -std::numeric_limits<acc_t>::infinity();
}

// ---------------------------------------------------------------------------------------------
// Prefill forward.

template <typename acc_t>
struct PrefillScratch {
  std::vector<acc_t> qt, st, o, m, l, alpha, kbuf, vbuf;
  std::vector<acc_t> last;  // last visible key per column (exact in acc_t)
  std::vector<int64_t> bias_off;
  // K and V of one (kv batch, head) pair as dense acc_t rows, each tile packed the first time one
  // of the pair's query blocks run by this thread needs it, so the later blocks skip the copy.
  int64_t packed_pair = -1;
  std::vector<acc_t> kpack, vpack;
  std::vector<char> k_done, v_done;  // per tile of kBK keys
};

constexpr int64_t kPairPackBytes = 16 << 20;  // larger pairs pack per tile, per query block

// Keys (or values) [j0, j0 + n) of (kb, h), j0 a multiple of kBK, as dense acc_t rows (see
// rows_as_acc): in place when possible, else from the pair's packed copy.
template <typename scalar_t, typename acc_t>
const acc_t* prefill_tile(const Problem<scalar_t, acc_t>& P, int64_t kb, int64_t h, int64_t j0, int64_t n,
                          bool values, PrefillScratch<acc_t>& w, int64_t& ld) {
  const AttentionParams& p = P.p;
  const int64_t d = values ? p.v_dim : p.qk_dim, src_ld = values ? p.v_stride[1] : p.k_stride[1];
  const scalar_t* src = values ? P.v_row(kb, h, j0) : P.k_row(kb, h, j0);
  const int64_t pair_bytes = p.kv_len * (p.qk_dim + p.v_dim) * int64_t(sizeof(acc_t));
  if (rows_usable_in_place<scalar_t, acc_t>(src_ld, n, d) || pair_bytes > kPairPackBytes)
    return rows_as_acc<scalar_t, acc_t>(src, src_ld, n, d, values ? w.vbuf : w.kbuf, ld);
  const int64_t pair = kb * p.heads + h, tiles = ceil_div(p.kv_len, kBK);
  if (w.packed_pair != pair) {
    w.packed_pair = pair;
    w.kpack.resize(p.kv_len * p.qk_dim);
    w.vpack.resize(p.kv_len * p.v_dim);
    w.k_done.assign(tiles, 0);
    w.v_done.assign(tiles, 0);
  }
  acc_t* dst = (values ? w.vpack : w.kpack).data() + j0 * d;
  char& done = (values ? w.v_done : w.k_done)[j0 / kBK];
  if (!done) {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t x = 0; x < d; ++x) dst[j * d + x] = acc_t(src[j * src_ld + x]);
    done = 1;
  }
  ld = d;
  return dst;
}

// Rows [r0, r0 + nr) of (kb, h).
template <typename scalar_t, typename acc_t>
void prefill_block(const Problem<scalar_t, acc_t>& P, int64_t kb, int64_t h, int64_t r0, int64_t nr,
                   PrefillScratch<acc_t>& w) {
  using V = Vec<acc_t>;
  constexpr int L = kLanes<acc_t>;
  constexpr acc_t kNegInf = -std::numeric_limits<acc_t>::infinity();
  const AttentionParams& p = P.p;
  const int64_t D = p.qk_dim, Dv = p.v_dim;
  const int64_t nq = round_up(nr, L);  // columns, padded to whole vectors
  w.qt.assign(D * nq, acc_t(0));
  w.st.resize(kBK * nq);
  w.o.assign(nr * Dv, acc_t(0));
  w.m.assign(nq, kNegInf);
  w.l.assign(nq, acc_t(0));
  w.alpha.resize(nq);
  w.bias_off.resize(nq);
  w.last.assign(nq, acc_t(p.kv_len - 1));
  int64_t max_last = -1, min_last = p.kv_len;
  for (int64_t c = 0; c < nr; ++c) {
    const scalar_t* qrow = P.q_row(kb, h, r0 + c);
    for (int64_t x = 0; x < D; ++x) w.qt[x * nq + c] = acc_t(qrow[x]) * acc_t(p.scale);
    const int64_t last = P.last_key(r0 + c);
    w.last[c] = acc_t(last);
    max_last = std::max(max_last, last);
    min_last = std::min(min_last, last);
    if (P.bias) w.bias_off[c] = P.bias_offset(kb, h, r0 + c);
  }
  for (int64_t j0 = 0; j0 <= max_last; j0 += kBK) {
    const int64_t nk = std::min(kBK, p.kv_len - j0);
    if (!P.any_visible(kb, j0, nk)) continue;
    int64_t ldk, ldv;
    const acc_t* kt = prefill_tile(P, kb, h, j0, nk, false, w, ldk);
    gemm<acc_t>(nk, nq, D, kt, ldk, 1, w.qt.data(), nq, w.st.data(), nq, false);
    // Masks, bias and causality on S^T rows (one key each).
    for (int64_t jj = 0; jj < nk; ++jj) {
      const int64_t j = j0 + jj;
      acc_t* row = w.st.data() + jj * nq;
      if (p.mask && !p.mask[kb * p.kv_len + j]) {
        std::fill(row, row + nq, kNegInf);
        continue;
      }
      if (P.bias) {
        const acc_t* bj = P.bias + j * p.bias_stride[3];
        for (int64_t c = 0; c < nr; ++c) row[c] += bj[w.bias_off[c]];
      }
      if (j > min_last)
        for (int64_t c = 0; c < nq; c += L)
          vstore(row + c, vload(w.last.data() + c) < vbcast(acc_t(j)) ? vbcast(kNegInf) : vload(row + c));
    }
    // Online softmax down the columns.
    for (int64_t c = 0; c < nq; c += L) {
      V mt = vbcast(kNegInf);
      for (int64_t jj = 0; jj < nk; ++jj) mt = vmax(mt, vload(w.st.data() + jj * nq + c));
      const V m_old = vload(w.m.data() + c);
      const V m_new = vmax(m_old, mt);
      const V m_safe = m_new == vbcast(kNegInf) ? V{} : m_new;  // all hidden so far: exp gives 0
      const V alpha = exp_nonpos(m_old - m_safe);
      V sum{};
      for (int64_t jj = 0; jj < nk; ++jj) {
        const V e = exp_nonpos(vload(w.st.data() + jj * nq + c) - m_safe);
        vstore(w.st.data() + jj * nq + c, e);
        sum += e;
      }
      vstore(w.l.data() + c, vload(w.l.data() + c) * alpha + sum);
      vstore(w.m.data() + c, m_new);
      vstore(w.alpha.data() + c, alpha);
    }
    for (int64_t c = 0; c < nr; ++c) {
      if (w.alpha[c] == acc_t(1)) continue;
      acc_t* orow = w.o.data() + c * Dv;
      for (int64_t x = 0; x < Dv; ++x) orow[x] *= w.alpha[c];
    }
    const acc_t* vt = prefill_tile(P, kb, h, j0, nk, true, w, ldv);
    gemm<acc_t>(nr, Dv, nk, w.st.data(), 1, nq, vt, ldv, w.o.data(), Dv, true);
  }
  for (int64_t c = 0; c < nr; ++c) write_row(P, kb, h, r0 + c, w.o.data() + c * Dv, w.m[c], w.l[c]);
}

// ---------------------------------------------------------------------------------------------
// Decode forward: all rows (<= kDecodeRows) of kv batch kb for heads [h0, h0 + nh) against keys
// [j_begin, j_end), a chunk of keys at a time. Within a chunk the loops run key-major, head-minor:
// one position's heads are adjacent in a [batch, capacity, heads, dim] cache, so K and V stream
// sequentially (a head-by-head walk jumps a cache row, usually a page, per key and thrashes the
// TLB and the prefetchers). Leaves each head's unnormalised o and running m, l in the scratch.

template <typename acc_t>
struct DecodeScratch {
  std::vector<acc_t> qs, o, m, l, s;  // per head, then per row
  std::vector<acc_t> kbuf, vbuf;
};

// A [keys, heads, dim] block of K or V as acc_t: in place when the types agree, else converted.
template <typename scalar_t, typename acc_t>
const acc_t* block_as_acc(const scalar_t* src, int64_t row_ld, int64_t head_ld, int64_t nk, int64_t nh, int64_t d,
                          std::vector<acc_t>& buf, int64_t& ld_row, int64_t& ld_head) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    ld_row = row_ld;
    ld_head = head_ld;
    return src;
  } else {
    buf.resize(nk * nh * d);
    for (int64_t j = 0; j < nk; ++j)
      for (int64_t hh = 0; hh < nh; ++hh)
        for (int64_t x = 0; x < d; ++x) buf[(j * nh + hh) * d + x] = acc_t(src[j * row_ld + hh * head_ld + x]);
    ld_row = nh * d;
    ld_head = d;
    return buf.data();
  }
}

// Scores of a chunk: s[(hh * R + r) * lds + j] = dot(q[hh, r, :], k[j, hh, :]).
template <int R, typename T>
void decode_scores(const T* q, const T* k, int64_t k_ld, int64_t k_hd, int64_t nk, int64_t nh, int64_t d, T* s,
                   int64_t lds) {
  constexpr int L = kLanes<T>;
  constexpr int S = R <= 4 ? 2 : 1;  // independent FMA chains per row, as in gemm_rows
  for (int64_t j = 0; j < nk; ++j) {
    for (int64_t hh = 0; hh < nh; ++hh) {
      const T* krow = k + j * k_ld + hh * k_hd;
      const T* qh = q + hh * R * d;
      Vec<T> acc[S][R];
      for (int u = 0; u < S; ++u)
        for (int r = 0; r < R; ++r) acc[u][r] = Vec<T>{};
      int64_t x = 0;
      for (; x + S * L <= d; x += S * L) {
        for (int u = 0; u < S; ++u) {
          const Vec<T> kv = vload(krow + x + u * L);
          for (int r = 0; r < R; ++r) acc[u][r] += vload(qh + r * d + x + u * L) * kv;
        }
      }
      for (; x + L <= d; x += L) {
        const Vec<T> kv = vload(krow + x);
        for (int r = 0; r < R; ++r) acc[0][r] += vload(qh + r * d + x) * kv;
      }
      for (int r = 0; r < R; ++r) {
        for (int u = 1; u < S; ++u) acc[0][r] += acc[u][r];
        T t = hsum(acc[0][r]);
        for (int64_t y = x; y < d; ++y) t += qh[r * d + y] * krow[y];
        s[(hh * R + r) * lds + j] = t;
      }
    }
  }
}

// o[hh, r, :] += sum_j p[(hh * R + r) * ldp + j] v[j, hh, :], reading V in storage order.
template <typename T>
void decode_pv(int64_t R, const T* p, int64_t ldp, const T* v, int64_t v_ld, int64_t v_hd, int64_t nk, int64_t nh,
               int64_t dv, T* o) {
  constexpr int L = kLanes<T>;
  for (int64_t j = 0; j < nk; ++j) {
    for (int64_t hh = 0; hh < nh; ++hh) {
      const T* vrow = v + j * v_ld + hh * v_hd;
      for (int64_t r = 0; r < R; ++r) {
        const T w = p[(hh * R + r) * ldp + j];
        if (w == T(0)) continue;  // masked keys
        T* orow = o + (hh * R + r) * dv;
        const Vec<T> wv = vbcast(w);
        int64_t x = 0;
        for (; x + L <= dv; x += L) vstore(orow + x, vload(orow + x) + wv * vload(vrow + x));
        for (; x < dv; ++x) orow[x] += w * vrow[x];
      }
    }
  }
}

template <typename scalar_t, typename acc_t>
void decode_heads(const Problem<scalar_t, acc_t>& P, int64_t kb, int64_t h0, int64_t nh, int64_t j_begin,
                  int64_t j_end, DecodeScratch<acc_t>& w) {
  using V = Vec<acc_t>;
  constexpr int L = kLanes<acc_t>;
  constexpr acc_t kNegInf = -std::numeric_limits<acc_t>::infinity();
  constexpr int64_t ld = kDecodeChunk;
  const AttentionParams& p = P.p;
  const int64_t R = P.rows, D = p.qk_dim, Dv = p.v_dim;
  w.qs.resize(nh * R * D);
  w.o.assign(nh * R * Dv, acc_t(0));
  w.m.assign(nh * R, kNegInf);
  w.l.assign(nh * R, acc_t(0));
  w.s.resize(nh * R * ld);
  int64_t last[kDecodeRows];
  for (int64_t r = 0; r < R; ++r) last[r] = P.last_key(r);
  for (int64_t hh = 0; hh < nh; ++hh) {
    for (int64_t r = 0; r < R; ++r) {
      const scalar_t* qrow = P.q_row(kb, h0 + hh, r);
      for (int64_t x = 0; x < D; ++x) w.qs[(hh * R + r) * D + x] = acc_t(qrow[x]) * acc_t(p.scale);
    }
  }
  j_end = std::min(j_end, *std::max_element(last, last + R) + 1);
  for (int64_t j0 = j_begin; j0 < j_end; j0 += ld) {
    const int64_t nk = std::min(ld, j_end - j0), nkp = round_up(nk, L);
    if (!P.any_visible(kb, j0, nk)) continue;
    int64_t k_ld, k_hd, v_ld, v_hd;
    const acc_t* kt = block_as_acc<scalar_t, acc_t>(P.k_row(kb, h0, j0), p.k_stride[1], p.k_stride[2], nk, nh, D,
                                                    w.kbuf, k_ld, k_hd);
    switch (R) {
      case 1: decode_scores<1>(w.qs.data(), kt, k_ld, k_hd, nk, nh, D, w.s.data(), ld); break;
      case 2: decode_scores<2>(w.qs.data(), kt, k_ld, k_hd, nk, nh, D, w.s.data(), ld); break;
      case 3: decode_scores<3>(w.qs.data(), kt, k_ld, k_hd, nk, nh, D, w.s.data(), ld); break;
      case 4: decode_scores<4>(w.qs.data(), kt, k_ld, k_hd, nk, nh, D, w.s.data(), ld); break;
      case 5: decode_scores<5>(w.qs.data(), kt, k_ld, k_hd, nk, nh, D, w.s.data(), ld); break;
      case 6: decode_scores<6>(w.qs.data(), kt, k_ld, k_hd, nk, nh, D, w.s.data(), ld); break;
      case 7: decode_scores<7>(w.qs.data(), kt, k_ld, k_hd, nk, nh, D, w.s.data(), ld); break;
      default: decode_scores<8>(w.qs.data(), kt, k_ld, k_hd, nk, nh, D, w.s.data(), ld); break;
    }
    // Bias, masks, then the online softmax, per (head, row).
    for (int64_t i = 0; i < nh * R; ++i) {
      const int64_t h = h0 + i / R, r = i % R;
      acc_t* srow = w.s.data() + i * ld;
      std::fill(srow + nk, srow + nkp, kNegInf);  // vector padding
      if (P.bias) {
        const acc_t* b = P.bias + P.bias_offset(kb, h, r) + j0 * p.bias_stride[3];
        for (int64_t jj = 0; jj < nk; ++jj) srow[jj] += b[jj * p.bias_stride[3]];
      }
      if (p.mask) {
        const bool* mk = p.mask + kb * p.kv_len + j0;
        for (int64_t jj = 0; jj < nk; ++jj) srow[jj] = mk[jj] ? srow[jj] : kNegInf;
      }
      for (int64_t jj = std::max<int64_t>(0, last[r] + 1 - j0); jj < nk; ++jj) srow[jj] = kNegInf;  // causal
      V mv = vbcast(kNegInf);
      for (int64_t jj = 0; jj < nkp; jj += L) mv = vmax(mv, vload(srow + jj));
      const acc_t m_new = std::max(w.m[i], hmax(mv));
      if (m_new == kNegInf) {  // nothing visible yet: this row adds nothing
        std::fill(srow, srow + nkp, acc_t(0));
        continue;
      }
      V sum{};
      for (int64_t jj = 0; jj < nkp; jj += L) {
        const V e = exp_nonpos(vload(srow + jj) - m_new);
        vstore(srow + jj, e);
        sum += e;
      }
      const acc_t alpha = w.m[i] == kNegInf ? acc_t(0) : std::exp(w.m[i] - m_new);
      w.l[i] = w.l[i] * alpha + hsum(sum);
      w.m[i] = m_new;
      if (alpha != acc_t(1))
        for (int64_t x = 0; x < Dv; ++x) w.o[i * Dv + x] *= alpha;
    }
    const acc_t* vt = block_as_acc<scalar_t, acc_t>(P.v_row(kb, h0, j0), p.v_stride[1], p.v_stride[2], nk, nh, Dv,
                                                    w.vbuf, v_ld, v_hd);
    if (R <= 2) {
      decode_pv<acc_t>(R, w.s.data(), ld, vt, v_ld, v_hd, nk, nh, Dv, w.o.data());
    } else {  // enough rows to keep register tiles busy, which beats streaming order here
      for (int64_t hh = 0; hh < nh; ++hh)
        gemm<acc_t>(R, Dv, nk, w.s.data() + hh * R * ld, ld, 1, vt + hh * v_hd, v_ld, w.o.data() + hh * R * Dv, Dv,
                    true);
    }
  }
}

// Decoding's work items are (kv batch, group of heads, KV split): head groups as large as keeps
// two items per thread, then KV splits (merged afterwards) if batch x heads is still too few.
template <typename scalar_t, typename acc_t>
void decode_forward(const Problem<scalar_t, acc_t>& P) {
  const AttentionParams& prm = P.p;
  const int64_t R = P.rows, Dv = prm.v_dim, H = prm.heads;
  const int64_t want = 2 * at::get_num_threads();
  const int64_t hb = ceil_div(H, std::min(H, ceil_div(want, prm.kv_batch)));
  const int64_t groups = ceil_div(H, hb), units = prm.kv_batch * groups;
  const int64_t splits =
      units >= want ? 1 : std::max<int64_t>(1, std::min(ceil_div(want, units), prm.kv_len / (4 * kDecodeChunk)));
  if (splits == 1) {
    at::parallel_for(0, units, 1, [&](int64_t begin, int64_t end) {
      DecodeScratch<acc_t> w;
      for (int64_t t = begin; t < end; ++t) {
        const int64_t kb = t / groups, h0 = (t % groups) * hb, nh = std::min(hb, H - h0);
        decode_heads(P, kb, h0, nh, 0, prm.kv_len, w);
        for (int64_t i = 0; i < nh * R; ++i)
          write_row(P, kb, h0 + i / R, i % R, w.o.data() + i * Dv, w.m[i], w.l[i]);
      }
    });
    return;
  }
  // Split-KV: partial (o, m, l) per span of keys, indexed ((kb * H + h) * splits + s) * R + r,
  // then one merge per (kv batch, head).
  const int64_t span = round_up(ceil_div(prm.kv_len, splits), kDecodeChunk), pairs = prm.kv_batch * H;
  std::vector<acc_t> part_o(pairs * splits * R * Dv), part_m(pairs * splits * R), part_l(pairs * splits * R);
  at::parallel_for(0, units * splits, 1, [&](int64_t begin, int64_t end) {
    DecodeScratch<acc_t> w;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t unit = t / splits, s = t % splits, kb = unit / groups, h0 = (unit % groups) * hb;
      const int64_t nh = std::min(hb, H - h0), j0 = s * span;
      decode_heads(P, kb, h0, nh, j0, std::min(prm.kv_len, j0 + span), w);
      for (int64_t hh = 0; hh < nh; ++hh) {
        const int64_t dst = ((kb * H + h0 + hh) * splits + s) * R;
        std::copy_n(w.o.begin() + hh * R * Dv, R * Dv, part_o.begin() + dst * Dv);
        std::copy_n(w.m.begin() + hh * R, R, part_m.begin() + dst);
        std::copy_n(w.l.begin() + hh * R, R, part_l.begin() + dst);
      }
    }
  });
  at::parallel_for(0, pairs, 1, [&](int64_t begin, int64_t end) {
    constexpr acc_t kNegInf = -std::numeric_limits<acc_t>::infinity();
    std::vector<acc_t> o(Dv);
    for (int64_t pair = begin; pair < end; ++pair) {
      for (int64_t r = 0; r < R; ++r) {
        acc_t m = kNegInf, l = 0;
        for (int64_t s = 0; s < splits; ++s) m = std::max(m, part_m[(pair * splits + s) * R + r]);
        std::fill(o.begin(), o.end(), acc_t(0));
        for (int64_t s = 0; s < splits && m != kNegInf; ++s) {
          const int64_t i = (pair * splits + s) * R + r;
          if (part_l[i] == acc_t(0)) continue;
          const acc_t f = std::exp(part_m[i] - m);
          l += part_l[i] * f;
          for (int64_t x = 0; x < Dv; ++x) o[x] += part_o[i * Dv + x] * f;
        }
        write_row(P, pair / H, pair % H, r, o.data(), m, l);
      }
    }
  });
}

template <typename scalar_t, typename acc_t>
void forward(const AttentionParams& prm) {
  const Problem<scalar_t, acc_t> P(prm);
  const int64_t pairs = prm.kv_batch * prm.heads, R = P.rows;
  if (pairs == 0 || R == 0) return;
  if (R <= kDecodeRows) return decode_forward(P);
  const int64_t blocks = ceil_div(R, kBQ);
  at::parallel_for(0, pairs * blocks, 1, [&](int64_t begin, int64_t end) {
    PrefillScratch<acc_t> w;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t pair = t / blocks, r0 = (t % blocks) * kBQ;
      prefill_block(P, pair / prm.heads, pair % prm.heads, r0, std::min(kBQ, R - r0), w);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Backward: one task per (kv batch, head) owns its dK, dV tiles and all its dQ rows, so no two
// tasks write the same gradient element. Per tile: S^T = K Q^T, P^T = exp(S^T - lse) (see inv_l),
// dP^T = V dO^T, dS^T = P^T (dP^T - rowsum(dO * O)), dV = P^T dO, dK = dS^T Q, dQ += dS K.

template <typename scalar_t, typename acc_t>
void backward_pair(const AttentionBwdParams& bp, const Problem<scalar_t, acc_t>& P, int64_t kb, int64_t h) {
  using V = Vec<acc_t>;
  constexpr int L = kLanes<acc_t>;
  constexpr acc_t kInf = std::numeric_limits<acc_t>::infinity();
  const AttentionParams& p = P.p;
  const int64_t R = P.rows, D = p.qk_dim, Dv = p.v_dim, nq = round_up(R, L);
  const auto* gout = static_cast<const scalar_t*>(bp.grad_out);
  auto* gq = static_cast<scalar_t*>(bp.grad_q);
  auto* gk = static_cast<scalar_t*>(bp.grad_k);
  auto* gv = static_cast<scalar_t*>(bp.grad_v);
  // Per-row operands, packed once: Q^T and Q rows (scaled), dO^T and dO rows, D = rowsum(dO * O),
  // lse (+inf for rows without a visible key, so their P is exp(-inf) = 0).
  std::vector<acc_t> qt(D * nq, acc_t(0)), qs(R * D), dot(Dv * nq, acc_t(0)), dor(R * Dv);
  std::vector<acc_t> delta(nq, acc_t(0)), lse(nq, kInf), dq(R * D, acc_t(0));
  std::vector<int64_t> bias_off(nq);
  std::vector<int64_t> last(nq, -1);
  int64_t max_last = -1, min_last = p.kv_len;
  for (int64_t r = 0; r < R; ++r) {
    const scalar_t* qrow = P.q_row(kb, h, r);
    for (int64_t x = 0; x < D; ++x) qt[x * nq + r] = qs[r * D + x] = acc_t(qrow[x]) * acc_t(p.scale);
    const int64_t off = P.out_offset(kb, h, r);
    acc_t dsum = 0;
    for (int64_t x = 0; x < Dv; ++x) {
      const acc_t g = acc_t(gout[off + x]);
      dot[x * nq + r] = dor[r * Dv + x] = g;
      dsum += g * acc_t(P.out[off + x]);
    }
    delta[r] = dsum;
    const acc_t l = P.lse[P.lse_offset(kb, h, r)];
    lse[r] = l == -kInf ? kInf : l;
    last[r] = P.last_key(r);
    max_last = std::max(max_last, last[r]);
    min_last = std::min(min_last, last[r]);
    if (P.bias) bias_off[r] = P.bias_offset(kb, h, r);
  }
  std::vector<acc_t> st(kBK * nq), dpt(kBK * nq), dk(kBK * D), dv(kBK * Dv), kbuf, vbuf;
  // S^T for keys [j0, j0 + nk) with bias and causality applied (masked keys' rows are not written:
  // the callers skip them).
  const auto scores = [&](int64_t j0, int64_t nk, const acc_t* kt, int64_t ldk) {
    gemm<acc_t>(nk, nq, D, kt, ldk, 1, qt.data(), nq, st.data(), nq, false);
    for (int64_t jj = 0; jj < nk; ++jj) {
      const int64_t j = j0 + jj;
      acc_t* srow = st.data() + jj * nq;
      if (p.mask && !p.mask[kb * p.kv_len + j]) continue;
      if (P.bias) {
        const acc_t* bj = P.bias + j * p.bias_stride[3];
        for (int64_t r = 0; r < R; ++r) srow[r] += bj[bias_off[r]];
      }
      if (j > min_last)
        for (int64_t r = 0; r < R; ++r)
          if (j > last[r]) srow[r] = -kInf;
    }
  };
  // P = exp(S - lse) * inv_l. A row whose every key carries a large additive bias (a finfo.min
  // mask over all keys: Perceiver's fully padded rows) has |lse| so large that m + log(l) lost
  // log(l) to rounding; for such rows an extra pass recomputes the row max m and sum l exactly,
  // and P = exp(S - m) / l.
  std::vector<acc_t> inv_l(nq, acc_t(1));
  const auto lost = [&](int64_t r) { return P.bias && lse[r] != kInf && std::abs(lse[r]) > kExactLse<acc_t>; };
  bool redo = false;
  for (int64_t r = 0; r < R; ++r) redo |= lost(r);
  if (redo) {
    std::vector<acc_t> m(nq, -kInf), l(nq, acc_t(0));
    for (int64_t j0 = 0; j0 <= max_last; j0 += kBK) {
      const int64_t nk = std::min(kBK, p.kv_len - j0);
      if (!P.any_visible(kb, j0, nk)) continue;
      int64_t ldk;
      const acc_t* kt = rows_as_acc<scalar_t, acc_t>(P.k_row(kb, h, j0), p.k_stride[1], nk, D, kbuf, ldk);
      scores(j0, nk, kt, ldk);
      for (int64_t jj = 0; jj < nk; ++jj) {
        if (p.mask && !p.mask[kb * p.kv_len + j0 + jj]) continue;
        const acc_t* srow = st.data() + jj * nq;
        for (int64_t r = 0; r < R; ++r) {
          if (srow[r] == -kInf) continue;
          if (srow[r] > m[r]) {
            l[r] = l[r] * std::exp(m[r] - srow[r]) + acc_t(1);
            m[r] = srow[r];
          } else {
            l[r] += std::exp(srow[r] - m[r]);
          }
        }
      }
    }
    for (int64_t r = 0; r < R; ++r)
      if (lost(r) && l[r] > 0) {
        lse[r] = m[r];
        inv_l[r] = acc_t(1) / l[r];
      }
  }
  for (int64_t j0 = 0; j0 < p.kv_len; j0 += kBK) {
    const int64_t nk = std::min(kBK, p.kv_len - j0);
    const bool live = j0 <= max_last && P.any_visible(kb, j0, nk);
    std::fill(dk.begin(), dk.end(), acc_t(0));
    std::fill(dv.begin(), dv.end(), acc_t(0));
    if (live) {
      int64_t ldk, ldv;
      const acc_t* kt = rows_as_acc<scalar_t, acc_t>(P.k_row(kb, h, j0), p.k_stride[1], nk, D, kbuf, ldk);
      const acc_t* vt = rows_as_acc<scalar_t, acc_t>(P.v_row(kb, h, j0), p.v_stride[1], nk, Dv, vbuf, ldv);
      scores(j0, nk, kt, ldk);
      gemm<acc_t>(nk, nq, Dv, vt, ldv, 1, dot.data(), nq, dpt.data(), nq, false);
      for (int64_t jj = 0; jj < nk; ++jj) {
        acc_t* srow = st.data() + jj * nq;
        acc_t* drow = dpt.data() + jj * nq;
        if (p.mask && !p.mask[kb * p.kv_len + j0 + jj]) {
          std::fill(srow, srow + nq, acc_t(0));
          std::fill(drow, drow + nq, acc_t(0));
          continue;
        }
        for (int64_t c = 0; c < nq; c += L) {
          const V pr = exp_nonpos(vload(srow + c) - vload(lse.data() + c)) * vload(inv_l.data() + c);
          vstore(srow + c, pr);
          vstore(drow + c, pr * (vload(drow + c) - vload(delta.data() + c)));
        }
      }
      gemm<acc_t>(nk, Dv, R, st.data(), nq, 1, dor.data(), Dv, dv.data(), Dv, false);
      gemm<acc_t>(nk, D, R, dpt.data(), nq, 1, qs.data(), D, dk.data(), D, false);
      gemm<acc_t>(R, D, nk, dpt.data(), 1, nq, kt, ldk, dq.data(), D, true);
    }
    for (int64_t jj = 0; jj < nk; ++jj) {
      const int64_t row = (kb * p.kv_len + j0 + jj) * p.heads + h;
      for (int64_t x = 0; x < D; ++x) gk[row * D + x] = scalar_t(dk[jj * D + x]);
      for (int64_t x = 0; x < Dv; ++x) gv[row * Dv + x] = scalar_t(dv[jj * Dv + x]);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    scalar_t* dst = gq + ((P.batch_of(kb, r) * p.q_len + P.pos_of(r)) * p.heads + h) * D;
    for (int64_t x = 0; x < D; ++x) dst[x] = scalar_t(dq[r * D + x] * acc_t(p.scale));
  }
}

template <typename scalar_t, typename acc_t>
void backward(const AttentionBwdParams& bp) {
  const Problem<scalar_t, acc_t> P(bp.fwd);
  const int64_t pairs = bp.fwd.kv_batch * bp.fwd.heads;
  at::parallel_for(0, pairs, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) backward_pair(bp, P, t / bp.fwd.heads, t % bp.fwd.heads);
  });
}

inline void run_forward(const AttentionParams& p) {
  switch (p.dtype) {
    case AttnDtype::kFloat: forward<float, float>(p); break;
    case AttnDtype::kDouble: forward<double, double>(p); break;
    case AttnDtype::kHalf: forward<c10::Half, float>(p); break;
    case AttnDtype::kBFloat16: forward<c10::BFloat16, float>(p); break;
  }
}

inline void run_backward(const AttentionBwdParams& p) {
  switch (p.fwd.dtype) {
    case AttnDtype::kFloat: backward<float, float>(p); break;
    case AttnDtype::kDouble: backward<double, double>(p); break;
    case AttnDtype::kHalf: backward<c10::Half, float>(p); break;
    case AttnDtype::kBFloat16: backward<c10::BFloat16, float>(p); break;
  }
}

// CUDA attention kernel bodies and their templated launchers (light includes only). Instantiated
// once per dtype by attention_cuda_{f32,f64,f16,bf16}.cu; planned and dispatched by
// attention_cuda.cu. Semantics are those of the CPU kernel (attention_cpu_impl.h) and of
// pygen.ops.attention_reference: s = (q * scale) . k + bias, masked / causally hidden keys are
// -inf, rows without a visible key give out 0 and lse -inf, never NaN.
//
// Design (warp-per-row, fp32 or fp64 accumulation, no tensor cores):
//  - Work items. The query rows of one (kv batch kb, head h) pair are its kv_group * q_len rows
//    (beams sharing keys), row r = query (b = kb * kv_group + r / q_len, i = r % q_len). Every
//    kernel flattens its work items on grid.x and loops over them (grid-stride), so no grid
//    dimension can overflow whatever batch * heads is.
//  - Output chunks. Each lane accumulates output dims lane + 32 t, t < NV (NV <= 5, a template
//    parameter), in registers: a block covers 32 * NV output dims; wider v dims (e.g. 1280) get
//    more blocks along v, each recomputing the scores (a slower but general path).
//  - Prefill ("rows" kernel, any shape): a block of 4 warps owns 16 query rows (4 per warp) of
//    one pair. Per tile of 32 keys the block stages K (chunks of <= 256 q/k dims, padded rows
//    so float4 reads are bank-conflict free) and V in shared memory as the accumulation type;
//    lane j scores key j against the warp's 4 rows, the warp runs the online softmax
//    (max by shuffles, per-lane partial sums), writes P to shared memory, then lanes switch to
//    output dims for O += P V. Q is staged once (or per chunk when qk_dim > 256).
//  - Decode ("decode" kernel, rows per pair <= 8: generation steps, beams x q_len; compiled for
//    1, 4 or 8 rows): a block of
//    4 warps owns all rows of one pair and one KV split; warps take interleaved 32-key tiles,
//    stage their K tile privately, read V straight from global memory (coalesced along dims),
//    and merge their (m, l, O) in shared memory at the end. When batch * heads gives too few
//    blocks to fill the GPU, KV splits into spans whose partials a combine kernel merges by
//    log-sum-exp.
//  - Backward (general dims, deterministic, no atomics): D_i = rowsum(dO_i * O_i); a warp per
//    key row (kb, j, h) loops over the kv_group * q_len query rows of its pair to accumulate dK
//    and dV; a warp per query row accumulates dQ. P = exp(s - lse) is recomputed with warp
//    reductions; accumulators live in per-warp shared memory (lane-owned dims).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>

#include "attention_cuda.h"
#include "attention_params.h"

namespace pygen {
namespace attn_cuda {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = 4;
constexpr int kBQ = kWarps * kRowsPerWarp;  // query rows per prefill block
constexpr int kBK = 32;                      // keys per tile (one per lane)
constexpr int kDecodeRows = 8;               // rows per pair up to which the decode kernel runs
constexpr int kMaxNV = 5;                    // 32 * 5 = 160 output dims per block
constexpr int kMaxChunk = 256;               // q/k dims staged per chunk

template <typename T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};

template <typename T>
struct Cvt;
template <>
struct Cvt<float> {
  static __device__ __forceinline__ float to(float x) { return x; }
  static __device__ __forceinline__ float from(float x) { return x; }
};
template <>
struct Cvt<double> {
  static __device__ __forceinline__ double to(double x) { return x; }
  static __device__ __forceinline__ double from(double x) { return x; }
};
template <>
struct Cvt<__half> {
  static __device__ __forceinline__ float to(__half x) { return __half2float(x); }
  static __device__ __forceinline__ __half from(float x) { return __float2half_rn(x); }
};
template <>
struct Cvt<__nv_bfloat16> {
  static __device__ __forceinline__ float to(__nv_bfloat16 x) { return __bfloat162float(x); }
  static __device__ __forceinline__ __nv_bfloat16 from(float x) { return __float2bfloat16_rn(x); }
};

__device__ __forceinline__ float neg_inf(float) { return -CUDART_INF_F; }
__device__ __forceinline__ double neg_inf(double) { return -CUDART_INF; }
// e^x for the softmax (x <= 0, -inf -> 0): the fast hardware path in fp32, exact in fp64.
__device__ __forceinline__ float exp_acc(float x) { return __expf(x); }
__device__ __forceinline__ double exp_acc(double x) { return exp(x); }
__device__ __forceinline__ float log_acc(float x) { return logf(x); }
__device__ __forceinline__ double log_acc(double x) { return log(x); }
__device__ __forceinline__ float max_acc(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double max_acc(double a, double b) { return fmax(a, b); }

// Butterfly all-reduce: every lane ends with bitwise the same value, so branches on it are
// warp-uniform.
template <typename A>
__device__ __forceinline__ A warp_max(A x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = max_acc(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
template <typename A>
__device__ __forceinline__ A warp_sum(A x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Four consecutive accumulators from 16-byte aligned shared memory.
__device__ __forceinline__ void load4(const float* p, float (&v)[4]) {
  const float4 t = *reinterpret_cast<const float4*>(p);
  v[0] = t.x;
  v[1] = t.y;
  v[2] = t.z;
  v[3] = t.w;
}
__device__ __forceinline__ void load4(const double* p, double (&v)[4]) {
  const double2 a = reinterpret_cast<const double2*>(p)[0], b = reinterpret_cast<const double2*>(p)[1];
  v[0] = a.x;
  v[1] = a.y;
  v[2] = b.x;
  v[3] = b.y;
}

__device__ __forceinline__ int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }
__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// End (exclusive) of the keys query position i sees.
__device__ __forceinline__ int64_t key_end(const AttentionParams& p, int64_t i) {
  return p.causal ? clamp64(i + p.kv_len - p.q_len + 1, 0, p.kv_len) : p.kv_len;
}

// Row stride of a staged K tile: dcp + 4 makes float4 reads by 32 lanes (one key each) free of
// bank conflicts (dcp is a multiple of 8).
__host__ __device__ __forceinline__ int k_stride(int dcp) { return dcp + 4; }

// ---------------------------------------------------------------------------------------------
// Prefill: 16 query rows per block, 32-key tiles in shared memory.

template <typename T>
__device__ __forceinline__ void stage_rows_q(const AttentionParams& p, typename AccOf<T>::type* q_s, int ldq,
                                             int64_t kb, int64_t h, int64_t r0, int64_t R, int64_t c0, int cw,
                                             int dcp) {
  using A = typename AccOf<T>::type;
  const T* Q = static_cast<const T*>(p.q);
  const A scale = A(p.scale);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int rr = warp; rr < kBQ; rr += kWarps) {
    const int64_t r = r0 + rr;
    A* dst = q_s + rr * ldq;
    if (r < R) {
      const int64_t b = kb * p.kv_group + r / p.q_len, i = r % p.q_len;
      const T* src = Q + b * p.q_stride[0] + i * p.q_stride[1] + h * p.q_stride[2] + c0;
      for (int x = lane; x < dcp; x += 32) dst[x] = x < cw ? Cvt<T>::to(src[x]) * scale : A(0);
    } else {
      for (int x = lane; x < dcp; x += 32) dst[x] = A(0);
    }
  }
}

// Keys [j0, j0 + nk) of one (kv batch, head) of a [*, len, heads, dim] tensor (`base` points at
// key 0 of it, `row_stride` between keys), dims [c0, c0 + cw), into dst: kBK rows of stride ld,
// `width` dims each; everything else zero. Keys the padding mask hides (`mrow` = the mask row of
// the kv batch, or null) are zero too, so no value of a masked key ever enters arithmetic.
// Threads tid of nthreads cooperate; loads go out in batches of 8 so several are in flight.
template <typename T>
__device__ __forceinline__ void stage_tile(const T* base, int64_t row_stride, const bool* mrow, int64_t j0, int nk,
                                           int64_t c0, int cw, typename AccOf<T>::type* dst, int ld, int width,
                                           int tid, int nthreads) {
  using A = typename AccOf<T>::type;
  constexpr int kBatch = 8;
  const unsigned total = unsigned(kBK) * unsigned(width);
  for (unsigned e0 = 0; e0 < total; e0 += kBatch * unsigned(nthreads)) {
    A buf[kBatch];
    unsigned row[kBatch], col[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const unsigned e = e0 + unsigned(u * nthreads + tid);
      row[u] = e / unsigned(width);
      col[u] = e - row[u] * unsigned(width);
      const bool ok = e < total && row[u] < unsigned(nk) && col[u] < unsigned(cw) &&
                      (mrow == nullptr || mrow[j0 + row[u]]);
      buf[u] = ok ? Cvt<T>::to(base[(j0 + row[u]) * row_stride + c0 + col[u]]) : A(0);
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u)
      if (row[u] < unsigned(kBK)) dst[row[u] * ld + col[u]] = buf[u];
  }
}

template <typename T, int NV>
__global__ void __launch_bounds__(kThreads) fwd_rows_kernel(const AttentionParams p, const AttnCudaFwdPlan plan) {
  using A = typename AccOf<T>::type;
  constexpr int RW = kRowsPerWarp;
  const A* __restrict__ bias = static_cast<const A*>(p.bias);
  T* __restrict__ out = static_cast<T*>(p.out);
  A* __restrict__ lse = static_cast<A*>(p.lse);
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int ldq = plan.ldq, ldk = k_stride(plan.dcp), ldv = plan.dvc;
  A* q_s = reinterpret_cast<A*>(smem_raw);
  A* k_s = q_s + kBQ * ldq;
  A* v_s = k_s + kBK * ldk;
  A* p_s = v_s + kBK * ldv;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t R = p.kv_group * p.q_len;
  const A ninf = neg_inf(A(0));

  for (int64_t w = blockIdx.x; w < plan.work; w += gridDim.x) {
    const int64_t dci = w % plan.n_dvc, tw = w / plan.n_dvc;
    const int64_t tile = tw % plan.row_tiles, pair = tw / plan.row_tiles;
    const int64_t kb = pair / p.heads, h = pair % p.heads;
    const int64_t r0 = tile * kBQ;
    const int64_t x0 = dci * plan.dvc;
    const int dvw = int(min64(plan.dvc, p.v_dim - x0));

    int64_t kend_r[RW], boff[RW];
#pragma unroll
    for (int rr = 0; rr < RW; ++rr) {
      const int64_t r = r0 + warp * RW + rr;
      const int64_t rc = r < R ? r : 0;
      const int64_t b = kb * p.kv_group + rc / p.q_len, i = rc % p.q_len;
      kend_r[rr] = r < R ? key_end(p, i) : 0;
      boff[rr] = b * p.bias_stride[0] + h * p.bias_stride[1] + i * p.bias_stride[2];
    }
    // Keys any row of the block sees: the largest position among its rows decides.
    const int64_t rl = min64(r0 + kBQ, R) - 1;
    const int64_t imax = (r0 / p.q_len != rl / p.q_len) ? p.q_len - 1 : rl % p.q_len;
    const int64_t kend = key_end(p, imax);
    const T* k_pair = static_cast<const T*>(p.k) + kb * p.k_stride[0] + h * p.k_stride[2];
    const T* v_pair = static_cast<const T*>(p.v) + kb * p.v_stride[0] + h * p.v_stride[2];
    const bool* mrow = p.mask ? p.mask + kb * p.kv_len : nullptr;

    A m[RW], l[RW], o[RW][NV];
#pragma unroll
    for (int rr = 0; rr < RW; ++rr) {
      m[rr] = ninf;
      l[rr] = A(0);
#pragma unroll
      for (int t = 0; t < NV; ++t) o[rr][t] = A(0);
    }

    __syncthreads();  // the previous work item no longer reads shared memory
    if (plan.nchunks == 1) stage_rows_q<T>(p, q_s, ldq, kb, h, r0, R, 0, int(p.qk_dim), plan.dcp);

    for (int64_t j0 = 0; j0 < kend; j0 += kBK) {
      const int nk = int(min64(kBK, kend - j0));
      const bool any = int(threadIdx.x) < nk && (p.mask == nullptr || p.mask[kb * p.kv_len + j0 + threadIdx.x]);
      // Also the barrier between the previous tile's reads and this tile's staging.
      if (!__syncthreads_or(any)) continue;

      A s[RW];
#pragma unroll
      for (int rr = 0; rr < RW; ++rr) s[rr] = A(0);
      for (int c = 0; c < plan.nchunks; ++c) {
        const int64_t c0 = int64_t(c) * plan.dc;
        const int cw = int(min64(plan.dc, p.qk_dim - c0));
        if (c > 0) __syncthreads();  // the previous chunk is read
        if (plan.nchunks > 1) stage_rows_q<T>(p, q_s, ldq, kb, h, r0, R, c0, cw, plan.dcp);
        stage_tile<T>(k_pair, p.k_stride[1], mrow, j0, nk, c0, cw, k_s, ldk, plan.dcp, threadIdx.x, kThreads);
        if (c == 0) stage_tile<T>(v_pair, p.v_stride[1], mrow, j0, nk, x0, dvw, v_s, ldv, plan.dvc, threadIdx.x, kThreads);
        __syncthreads();
        const A* kr = k_s + lane * ldk;
        const A* qw = q_s + warp * RW * ldq;
        for (int x = 0; x < plan.dcp; x += 4) {
          A kv[4];
          load4(kr + x, kv);
#pragma unroll
          for (int rr = 0; rr < RW; ++rr) {
            A qv[4];
            load4(qw + rr * ldq + x, qv);
            s[rr] += qv[0] * kv[0] + qv[1] * kv[1] + qv[2] * kv[2] + qv[3] * kv[3];
          }
        }
      }

      const int64_t j = j0 + lane;
      const bool kvis = lane < nk && (p.mask == nullptr || p.mask[kb * p.kv_len + j]);
      A* pw = p_s + warp * RW * kBK;
#pragma unroll
      for (int rr = 0; rr < RW; ++rr) {
        A sc = ninf;
        if (kvis && j < kend_r[rr]) {
          sc = s[rr];
          if (bias) sc += bias[boff[rr] + j * p.bias_stride[3]];
        }
        const A mn = max_acc(m[rr], warp_max(sc));
        A pr = A(0);
        if (mn != ninf) {  // warp-uniform
          const A alpha = m[rr] == ninf ? A(0) : exp_acc(m[rr] - mn);
          pr = exp_acc(sc - mn);
          l[rr] = l[rr] * alpha + pr;
#pragma unroll
          for (int t = 0; t < NV; ++t) o[rr][t] *= alpha;
          m[rr] = mn;
        }
        pw[rr * kBK + lane] = pr;
      }
      __syncwarp();
      const int nk4 = (nk + 3) & ~3;  // P is 0 and V rows are 0 past nk
      for (int jj = 0; jj < nk4; jj += 4) {
        A pv[RW][4];
#pragma unroll
        for (int rr = 0; rr < RW; ++rr) load4(pw + rr * kBK + jj, pv[rr]);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const A* vrow = v_s + (jj + u) * ldv;
#pragma unroll
          for (int t = 0; t < NV; ++t) {
            const int x = lane + 32 * t;
            if (x < dvw) {
              const A vv = vrow[x];
#pragma unroll
              for (int rr = 0; rr < RW; ++rr) o[rr][t] += pv[rr][u] * vv;
            }
          }
        }
      }
    }

#pragma unroll
    for (int rr = 0; rr < RW; ++rr) {
      const A lt = warp_sum(l[rr]);
      const int64_t r = r0 + warp * RW + rr;
      if (r < R) {
        const int64_t b = kb * p.kv_group + r / p.q_len, i = r % p.q_len;
        const A inv = lt > A(0) ? A(1) / lt : A(0);
        T* orow = out + ((b * p.q_len + i) * p.heads + h) * p.v_dim + x0;
#pragma unroll
        for (int t = 0; t < NV; ++t) {
          const int x = lane + 32 * t;
          if (x < dvw) orow[x] = Cvt<T>::from(o[rr][t] * inv);
        }
        if (dci == 0 && lane == 0) lse[(b * p.heads + h) * p.q_len + i] = lt > A(0) ? m[rr] + log_acc(lt) : ninf;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decode: all (<= 8) rows of a pair in one block, warps on interleaved 32-key tiles of one KV
// split, merged in shared memory; partials of several splits merged by fwd_combine_kernel.

// Shared memory of the decode kernel: per-row key ends and bias offsets (int64), then Q (rd rows),
// the warps' K tiles, their P rows, and the merge buffers (m, l, O per warp and row).
inline size_t decode_smem_bytes(int rd, int ldq, int dcp, int dvc, size_t acc) {
  return 2 * size_t(rd) * sizeof(int64_t) +
         (size_t(rd) * ldq + size_t(kWarps) * kBK * k_stride(dcp) + size_t(kWarps) * rd * kBK +
          2 * size_t(kWarps) * rd + size_t(kWarps) * rd * dvc) * acc;
}

// RD: rows per pair the kernel is compiled for (1, 4 or 8; the call's rows R <= RD).
template <typename T, int NV, int RD>
__global__ void __launch_bounds__(kThreads) fwd_decode_kernel(const AttentionParams p, const AttnCudaFwdPlan plan,
                                                                typename AccOf<T>::type* ws) {
  using A = typename AccOf<T>::type;
  const T* __restrict__ Q = static_cast<const T*>(p.q);
  const T* __restrict__ K = static_cast<const T*>(p.k);
  const T* __restrict__ V = static_cast<const T*>(p.v);
  const A* __restrict__ bias = static_cast<const A*>(p.bias);
  T* __restrict__ out = static_cast<T*>(p.out);
  A* __restrict__ lse = static_cast<A*>(p.lse);
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int ldq = plan.ldq, ldk = k_stride(plan.dcp), dvc = plan.dvc;
  int64_t* kend_s = reinterpret_cast<int64_t*>(smem_raw);  // end of the keys row r sees
  int64_t* boff_s = kend_s + RD;                            // bias offset of row r
  A* q_s = reinterpret_cast<A*>(boff_s + RD);
  A* k_s = q_s + RD * ldq;
  A* p_s = k_s + kWarps * kBK * ldk;
  A* m_s = p_s + kWarps * RD * kBK;
  A* l_s = m_s + kWarps * RD;
  A* o_s = l_s + kWarps * RD;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int R = int(p.kv_group * p.q_len);  // <= RD
  const A ninf = neg_inf(A(0));
  const A scale = A(p.scale);
  // Split-KV partials: m, l at ((pair * nsplit + split) * R + r), o at that index * v_dim.
  const int64_t n_part = p.kv_batch * p.heads * plan.nsplit * R;
  A* ws_m = ws;
  A* ws_l = ws ? ws + n_part : nullptr;
  A* ws_o = ws ? ws + 2 * n_part : nullptr;

  for (int64_t w = blockIdx.x; w < plan.work; w += gridDim.x) {
    const int64_t dci = w % plan.n_dvc, tw = w / plan.n_dvc;
    const int64_t split = tw % plan.nsplit, pair = tw / plan.nsplit;
    const int64_t kb = pair / p.heads, h = pair % p.heads;
    const int64_t x0 = dci * plan.dvc;
    const int dvw = int(min64(plan.dvc, p.v_dim - x0));

    __syncthreads();  // the previous work item no longer reads shared memory
    if (threadIdx.x < RD) {
      const int r = threadIdx.x, rc = r < R ? r : 0;
      const int64_t b = kb * p.kv_group + rc / p.q_len, i = rc % p.q_len;
      kend_s[r] = r < R ? key_end(p, i) : 0;
      boff_s[r] = b * p.bias_stride[0] + h * p.bias_stride[1] + i * p.bias_stride[2];
    }
    for (int r = warp; r < RD; r += kWarps) {
      A* dst = q_s + r * ldq;
      if (r < R) {
        const int64_t b = kb * p.kv_group + r / p.q_len, i = r % p.q_len;
        const T* src = Q + b * p.q_stride[0] + i * p.q_stride[1] + h * p.q_stride[2];
        for (int x = lane; x < ldq; x += 32) dst[x] = x < p.qk_dim ? Cvt<T>::to(src[x]) * scale : A(0);
      } else {
        for (int x = lane; x < ldq; x += 32) dst[x] = A(0);
      }
    }
    __syncthreads();
    int64_t kend = 0;
    for (int r = 0; r < R; ++r) kend = kend_s[r] > kend ? kend_s[r] : kend;
    const int64_t ks = split * plan.split_len;
    const int64_t ke = min64(min64(ks + plan.split_len, p.kv_len), kend);

    A m[RD], l[RD], o[RD][NV];
#pragma unroll
    for (int r = 0; r < RD; ++r) {
      m[r] = ninf;
      l[r] = A(0);
#pragma unroll
      for (int t = 0; t < NV; ++t) o[r][t] = A(0);
    }
    const T* k_pair = K + kb * p.k_stride[0] + h * p.k_stride[2];
    A* kw = k_s + warp * kBK * ldk;
    A* pw = p_s + warp * RD * kBK;
    // Warps work independently from here to the merge: warp-level synchronisation only.
    for (int64_t jw = ks + warp * kBK; jw < ke; jw += kWarps * kBK) {
      const int nk = int(min64(kBK, ke - jw));
      const int64_t j = jw + lane;
      const bool kvis = lane < nk && (p.mask == nullptr || p.mask[kb * p.kv_len + j]);
      const unsigned vis_bits = __ballot_sync(0xffffffffu, kvis);
      if (vis_bits == 0u) continue;
      A s[RD];
#pragma unroll
      for (int r = 0; r < RD; ++r) s[r] = A(0);
      for (int c = 0; c < plan.nchunks; ++c) {
        const int64_t c0 = int64_t(c) * plan.dc;
        const int cw = int(min64(plan.dc, p.qk_dim - c0));
        __syncwarp();  // the warp's previous reads of kw are done
        stage_tile<T>(k_pair, p.k_stride[1], nullptr, jw, nk, c0, cw, kw, ldk, plan.dcp, lane, 32);
        __syncwarp();
        const A* kr = kw + lane * ldk;
        const A* qc = q_s + c0;
        for (int x = 0; x < plan.dcp; x += 4) {
          A kv[4];
          load4(kr + x, kv);
#pragma unroll
          for (int r = 0; r < RD; ++r) {
            if (r < R) {
              A qv[4];
              load4(qc + r * ldq + x, qv);
              s[r] += qv[0] * kv[0] + qv[1] * kv[1] + qv[2] * kv[2] + qv[3] * kv[3];
            }
          }
        }
      }
#pragma unroll
      for (int r = 0; r < RD; ++r) {
        if (r < R) {  // uniform
          A sc = ninf;
          if (kvis && j < kend_s[r]) {
            sc = s[r];
            if (bias) sc += bias[boff_s[r] + j * p.bias_stride[3]];
          }
          const A mn = max_acc(m[r], warp_max(sc));
          A pr = A(0);
          if (mn != ninf) {
            const A alpha = m[r] == ninf ? A(0) : exp_acc(m[r] - mn);
            pr = exp_acc(sc - mn);
            l[r] = l[r] * alpha + pr;
#pragma unroll
            for (int t = 0; t < NV; ++t) o[r][t] *= alpha;
            m[r] = mn;
          }
          pw[r * kBK + lane] = pr;
        }
      }
      __syncwarp();
      // O += P V, V straight from global memory (lanes along dims: coalesced), 4 keys at a time.
      // Keys past nk or masked load as 0 (their P is 0 too), so their values never enter.
      const T* vbase = V + kb * p.v_stride[0] + h * p.v_stride[2] + x0;
      for (int jj = 0; jj < nk; jj += 4) {
        A vv[4][NV];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const bool use = jj + u < nk && ((vis_bits >> (jj + u)) & 1u);
          const T* vrow = vbase + (jw + jj + u) * p.v_stride[1];
#pragma unroll
          for (int t = 0; t < NV; ++t) {
            const int x = lane + 32 * t;
            vv[u][t] = use && x < dvw ? Cvt<T>::to(vrow[x]) : A(0);
          }
        }
#pragma unroll
        for (int r = 0; r < RD; ++r) {
          if (r < R) {
            A pv[4];
            load4(pw + r * kBK + jj, pv);
#pragma unroll
            for (int u = 0; u < 4; ++u)
#pragma unroll
              for (int t = 0; t < NV; ++t) o[r][t] += pv[u] * vv[u][t];
          }
        }
      }
    }

    // Merge the warps.
#pragma unroll
    for (int r = 0; r < RD; ++r) {
      if (r < R) {
        const A lt = warp_sum(l[r]);
        if (lane == 0) {
          m_s[warp * RD + r] = m[r];
          l_s[warp * RD + r] = lt;
        }
        A* od = o_s + (warp * RD + r) * dvc;
#pragma unroll
        for (int t = 0; t < NV; ++t) {
          const int x = lane + 32 * t;
          if (x < dvw) od[x] = o[r][t];
        }
      }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < R * dvw; idx += kThreads) {
      const int r = idx / dvw, x = idx % dvw;
      A mx = ninf;
#pragma unroll
      for (int ww = 0; ww < kWarps; ++ww) mx = max_acc(mx, m_s[ww * RD + r]);
      A lsum = A(0), osum = A(0);
      if (mx != ninf) {
#pragma unroll
        for (int ww = 0; ww < kWarps; ++ww) {
          const A lw = l_s[ww * RD + r];
          if (lw > A(0)) {
            const A f = exp_acc(m_s[ww * RD + r] - mx);
            lsum += lw * f;
            osum += o_s[(ww * RD + r) * dvc + x] * f;
          }
        }
      }
      if (plan.nsplit == 1) {
        const int64_t b = kb * p.kv_group + r / p.q_len, i = r % p.q_len;
        out[((b * p.q_len + i) * p.heads + h) * p.v_dim + x0 + x] =
            Cvt<T>::from(lsum > A(0) ? osum / lsum : A(0));
        if (dci == 0 && x == 0) lse[(b * p.heads + h) * p.q_len + i] = lsum > A(0) ? mx + log_acc(lsum) : ninf;
      } else {
        const int64_t part = (pair * plan.nsplit + split) * R + r;
        ws_o[part * p.v_dim + x0 + x] = osum;
        if (dci == 0 && x == 0) {
          ws_m[part] = mx;
          ws_l[part] = lsum;
        }
      }
    }
  }
}

// Merges the split-KV partials: one thread per output element.
template <typename T>
__global__ void __launch_bounds__(256) fwd_combine_kernel(const AttentionParams p, int64_t nsplit,
                                                          const typename AccOf<T>::type* ws) {
  using A = typename AccOf<T>::type;
  const int64_t R = p.kv_group * p.q_len;
  const int64_t n_part = p.kv_batch * p.heads * nsplit * R;
  const A* ws_m = ws;
  const A* ws_l = ws + n_part;
  const A* ws_o = ws + 2 * n_part;
  T* out = static_cast<T*>(p.out);
  A* lse = static_cast<A*>(p.lse);
  const A ninf = neg_inf(A(0));
  const int64_t total = p.kv_batch * p.heads * R * p.v_dim;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t x = idx % p.v_dim, t = idx / p.v_dim;
    const int64_t r = t % R, pair = t / R;
    const int64_t kb = pair / p.heads, h = pair % p.heads;
    const int64_t base = pair * nsplit * R + r;
    A mx = ninf;
    for (int64_t s = 0; s < nsplit; ++s) mx = max_acc(mx, ws_m[base + s * R]);
    A lsum = A(0), osum = A(0);
    if (mx != ninf) {
      for (int64_t s = 0; s < nsplit; ++s) {
        const A ls = ws_l[base + s * R];
        if (ls > A(0)) {
          const A f = exp_acc(ws_m[base + s * R] - mx);
          lsum += ls * f;
          osum += ws_o[(base + s * R) * p.v_dim + x] * f;
        }
      }
    }
    const int64_t b = kb * p.kv_group + r / p.q_len, i = r % p.q_len;
    out[((b * p.q_len + i) * p.heads + h) * p.v_dim + x] = Cvt<T>::from(lsum > A(0) ? osum / lsum : A(0));
    if (x == 0) lse[(b * p.heads + h) * p.q_len + i] = lsum > A(0) ? mx + log_acc(lsum) : ninf;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward.

// delta[(b * heads + h) * q_len + i] = sum_x dO * O, a warp per row.
template <typename T>
__global__ void __launch_bounds__(kThreads) bwd_delta_kernel(const AttentionBwdParams bp,
                                                               typename AccOf<T>::type* delta) {
  using A = typename AccOf<T>::type;
  const AttentionParams& p = bp.fwd;
  const T* __restrict__ dout = static_cast<const T*>(bp.grad_out);
  const T* __restrict__ out = static_cast<const T*>(p.out);
  const int lane = threadIdx.x & 31, wpb = blockDim.x >> 5;
  const int64_t rows = p.batch * p.q_len * p.heads;
  for (int64_t row = int64_t(blockIdx.x) * wpb + (threadIdx.x >> 5); row < rows; row += int64_t(gridDim.x) * wpb) {
    A acc = A(0);
    for (int64_t x = lane; x < p.v_dim; x += 32) acc += Cvt<T>::to(dout[row * p.v_dim + x]) * Cvt<T>::to(out[row * p.v_dim + x]);
    acc = warp_sum(acc);
    if (lane == 0) {
      const int64_t h = row % p.heads, bi = row / p.heads;
      delta[(bi / p.q_len * p.heads + h) * p.q_len + bi % p.q_len] = acc;
    }
  }
}

// dK, dV: a warp per key row (kb, j, h) over all rows of its pair; dims lane-owned in smem.
template <typename T>
__global__ void __launch_bounds__(kThreads) bwd_dkdv_kernel(const AttentionBwdParams bp,
                                                              const typename AccOf<T>::type* delta) {
  using A = typename AccOf<T>::type;
  const AttentionParams& p = bp.fwd;
  const T* __restrict__ Q = static_cast<const T*>(p.q);
  const T* __restrict__ K = static_cast<const T*>(p.k);
  const T* __restrict__ V = static_cast<const T*>(p.v);
  const T* __restrict__ dout = static_cast<const T*>(bp.grad_out);
  const A* __restrict__ bias = static_cast<const A*>(p.bias);
  const A* __restrict__ lse = static_cast<const A*>(p.lse);
  T* __restrict__ gk = static_cast<T*>(bp.grad_k);
  T* __restrict__ gv = static_cast<T*>(bp.grad_v);
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wpb = blockDim.x >> 5;
  const int64_t D = p.qk_dim, Dv = p.v_dim;
  A* dk_acc = reinterpret_cast<A*>(smem_raw) + warp * (D + Dv);
  A* dv_acc = dk_acc + D;
  const A scale = A(p.scale);
  const A ninf = neg_inf(A(0));
  const int64_t R = p.kv_group * p.q_len;
  const int64_t keys = p.kv_batch * p.kv_len * p.heads;
  for (int64_t key = int64_t(blockIdx.x) * wpb + warp; key < keys; key += int64_t(gridDim.x) * wpb) {
    const int64_t h = key % p.heads, t = key / p.heads;
    const int64_t j = t % p.kv_len, kb = t / p.kv_len;
    for (int64_t x = lane; x < D; x += 32) dk_acc[x] = A(0);
    for (int64_t x = lane; x < Dv; x += 32) dv_acc[x] = A(0);
    if (p.mask == nullptr || p.mask[kb * p.kv_len + j]) {
      const T* kr = K + kb * p.k_stride[0] + j * p.k_stride[1] + h * p.k_stride[2];
      const T* vr = V + kb * p.v_stride[0] + j * p.v_stride[1] + h * p.v_stride[2];
      for (int64_t r = 0; r < R; ++r) {
        const int64_t b = kb * p.kv_group + r / p.q_len, i = r % p.q_len;
        if (j >= key_end(p, i)) continue;
        const A lr = lse[(b * p.heads + h) * p.q_len + i];
        if (lr == ninf) continue;  // the row saw no key
        const T* qr = Q + b * p.q_stride[0] + i * p.q_stride[1] + h * p.q_stride[2];
        A s = A(0);
        for (int64_t x = lane; x < D; x += 32) s += Cvt<T>::to(qr[x]) * scale * Cvt<T>::to(kr[x]);
        s = warp_sum(s);
        if (bias) s += bias[b * p.bias_stride[0] + h * p.bias_stride[1] + i * p.bias_stride[2] + j * p.bias_stride[3]];
        const A pr = exp_acc(s - lr);
        if (!(pr > A(0))) continue;  // uniform: s is the same on every lane
        const T* dr = dout + ((b * p.q_len + i) * p.heads + h) * Dv;
        A dp = A(0);
        for (int64_t x = lane; x < Dv; x += 32) dp += Cvt<T>::to(dr[x]) * Cvt<T>::to(vr[x]);
        dp = warp_sum(dp);
        const A ds = pr * (dp - delta[(b * p.heads + h) * p.q_len + i]);
        for (int64_t x = lane; x < Dv; x += 32) dv_acc[x] += pr * Cvt<T>::to(dr[x]);
        for (int64_t x = lane; x < D; x += 32) dk_acc[x] += ds * (Cvt<T>::to(qr[x]) * scale);
      }
    }
    for (int64_t x = lane; x < D; x += 32) gk[key * D + x] = Cvt<T>::from(dk_acc[x]);
    for (int64_t x = lane; x < Dv; x += 32) gv[key * Dv + x] = Cvt<T>::from(dv_acc[x]);
  }
}

// dQ: a warp per query row (b, i, h) over its visible keys.
template <typename T>
__global__ void __launch_bounds__(kThreads) bwd_dq_kernel(const AttentionBwdParams bp,
                                                            const typename AccOf<T>::type* delta) {
  using A = typename AccOf<T>::type;
  const AttentionParams& p = bp.fwd;
  const T* __restrict__ Q = static_cast<const T*>(p.q);
  const T* __restrict__ K = static_cast<const T*>(p.k);
  const T* __restrict__ V = static_cast<const T*>(p.v);
  const T* __restrict__ dout = static_cast<const T*>(bp.grad_out);
  const A* __restrict__ bias = static_cast<const A*>(p.bias);
  const A* __restrict__ lse = static_cast<const A*>(p.lse);
  T* __restrict__ gq = static_cast<T*>(bp.grad_q);
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wpb = blockDim.x >> 5;
  const int64_t D = p.qk_dim, Dv = p.v_dim;
  A* dq_acc = reinterpret_cast<A*>(smem_raw) + warp * D;
  const A scale = A(p.scale);
  const A ninf = neg_inf(A(0));
  const int64_t rows = p.batch * p.q_len * p.heads;
  for (int64_t row = int64_t(blockIdx.x) * wpb + warp; row < rows; row += int64_t(gridDim.x) * wpb) {
    const int64_t h = row % p.heads, bi = row / p.heads;
    const int64_t i = bi % p.q_len, b = bi / p.q_len, kb = b / p.kv_group;
    for (int64_t x = lane; x < D; x += 32) dq_acc[x] = A(0);
    const A lr = lse[(b * p.heads + h) * p.q_len + i];
    if (lr != ninf) {
      const A dl = delta[(b * p.heads + h) * p.q_len + i];
      const T* qr = Q + b * p.q_stride[0] + i * p.q_stride[1] + h * p.q_stride[2];
      const T* dr = dout + row * Dv;
      const int64_t jend = key_end(p, i);
      const int64_t boff = b * p.bias_stride[0] + h * p.bias_stride[1] + i * p.bias_stride[2];
      for (int64_t j = 0; j < jend; ++j) {
        if (p.mask != nullptr && !p.mask[kb * p.kv_len + j]) continue;
        const T* kr = K + kb * p.k_stride[0] + j * p.k_stride[1] + h * p.k_stride[2];
        A s = A(0);
        for (int64_t x = lane; x < D; x += 32) s += Cvt<T>::to(qr[x]) * scale * Cvt<T>::to(kr[x]);
        s = warp_sum(s);
        if (bias) s += bias[boff + j * p.bias_stride[3]];
        const A pr = exp_acc(s - lr);
        if (!(pr > A(0))) continue;
        const T* vr = V + kb * p.v_stride[0] + j * p.v_stride[1] + h * p.v_stride[2];
        A dp = A(0);
        for (int64_t x = lane; x < Dv; x += 32) dp += Cvt<T>::to(dr[x]) * Cvt<T>::to(vr[x]);
        dp = warp_sum(dp);
        const A ds = pr * (dp - dl);
        for (int64_t x = lane; x < D; x += 32) dq_acc[x] += ds * Cvt<T>::to(kr[x]);
      }
    }
    for (int64_t x = lane; x < D; x += 32) gq[row * D + x] = Cvt<T>::from(dq_acc[x] * scale);
  }
}

// ---------------------------------------------------------------------------------------------
// Launchers.

inline unsigned grid_of(int64_t blocks) {
  constexpr int64_t kMaxGrid = 0x7fffffff;
  return unsigned(blocks < 1 ? 1 : (blocks > kMaxGrid ? kMaxGrid : blocks));
}

template <typename T, int NV>
cudaError_t launch_fwd_nv(const AttentionParams& p, const AttnCudaFwdPlan& plan, void* workspace,
                          cudaStream_t stream) {
  using A = typename AccOf<T>::type;
  if (plan.kind == AttnCudaFwdPlan::kRows) {
    auto kernel = fwd_rows_kernel<T, NV>;
    if (plan.smem > 48 * 1024) {
      const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(plan.smem));
      if (e != cudaSuccess) return e;
    }
    kernel<<<grid_of(plan.grid), kThreads, plan.smem, stream>>>(p, plan);
    return cudaGetLastError();
  }
  auto kernel = plan.rd == 1 ? fwd_decode_kernel<T, NV, 1>
                : plan.rd == 4 ? fwd_decode_kernel<T, NV, 4>
                               : fwd_decode_kernel<T, NV, kDecodeRows>;
  if (plan.smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(plan.smem));
    if (e != cudaSuccess) return e;
  }
  A* ws = plan.nsplit > 1 ? static_cast<A*>(workspace) : nullptr;
  kernel<<<grid_of(plan.grid), kThreads, plan.smem, stream>>>(p, plan, ws);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || plan.nsplit == 1) return e;
  const int64_t total = p.kv_batch * p.heads * p.kv_group * p.q_len * p.v_dim;
  fwd_combine_kernel<T><<<grid_of((total + 255) / 256), 256, 0, stream>>>(p, plan.nsplit, ws);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_fwd(const AttentionParams& p, const AttnCudaFwdPlan& plan, void* workspace, cudaStream_t stream) {
  // float64 serves tests (gradcheck-style references): one instantiation keeps its compile short.
  if constexpr (sizeof(T) == 8) return launch_fwd_nv<T, kMaxNV>(p, plan, workspace, stream);
  switch (plan.nv) {
    case 1: return launch_fwd_nv<T, 1>(p, plan, workspace, stream);
    case 2: return launch_fwd_nv<T, 2>(p, plan, workspace, stream);
    case 3: return launch_fwd_nv<T, 3>(p, plan, workspace, stream);
    case 4: return launch_fwd_nv<T, 4>(p, plan, workspace, stream);
    default: return launch_fwd_nv<T, 5>(p, plan, workspace, stream);
  }
}

template <typename T>
cudaError_t launch_bwd(const AttentionBwdParams& bp, const AttnCudaBwdPlan& plan, void* workspace,
                       cudaStream_t stream) {
  using A = typename AccOf<T>::type;
  const AttentionParams& p = bp.fwd;
  A* delta = static_cast<A*>(workspace);
  const int threads = plan.warps * 32;
  const int64_t rows = p.batch * p.q_len * p.heads, keys = p.kv_batch * p.kv_len * p.heads;
  if (rows > 0) {
    bwd_delta_kernel<T><<<grid_of(plan.grid_rows), threads, 0, stream>>>(bp, delta);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  if (keys > 0) {
    auto kernel = bwd_dkdv_kernel<T>;
    if (plan.smem_dkdv > 48 * 1024) {
      const cudaError_t e =
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(plan.smem_dkdv));
      if (e != cudaSuccess) return e;
    }
    kernel<<<grid_of(plan.grid_keys), threads, plan.smem_dkdv, stream>>>(bp, delta);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  if (rows > 0) {
    auto kernel = bwd_dq_kernel<T>;
    if (plan.smem_dq > 48 * 1024) {
      const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(plan.smem_dq));
      if (e != cudaSuccess) return e;
    }
    kernel<<<grid_of(plan.grid_rows), threads, plan.smem_dq, stream>>>(bp, delta);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace attn_cuda
}  // namespace pygen

// Skinny linear kernel body, compiled twice by linear_cpu.cpp (see cpu_isa.h), hence no include
// guard. Needs linear.h, ATen/Parallel.h, <algorithm>, <cstring> and cpu_isa.h first.
//
// y[m, n] = x[m, :] . w[n, :] (+ bias[n]) for a few rows m. The work is memory bound: W (up to
// the LM head's vocab x hidden) is streamed once from memory while x stays in L1. Threads take
// blocks of W rows; within a block, register tiles of kTileW rows of W x kTileX rows of x keep
// kTileW * kTileX vector accumulators, and blocks small enough for L2 serve the later tiles of x.
// in_register() pins each loaded vector to a register: left alone, GCC folds the load into
// every FMA that uses it, and the load ports, not the FMA units, bound the tile (measured: 10-25 %
// slower at 8-16 rows).
// Every output element is the same sum in the same order whatever the tile: lane-wise partial
// sums over k, the lanes added in index order, the scalar tail of k, then the bias.
#include "cpu_vec_impl.h"

constexpr int kTileW = 2;
constexpr int kTileX = 6;
constexpr int64_t kBlockBytes = 256 << 10;  // of W per task: stays in L2 for the next tiles of x
constexpr int64_t kPrefetch = 1024;  // floats ahead (4 KiB) in W's stream; past W's end is harmless (no fault)

inline void in_register(Vec<float>& v) {
#if defined(__x86_64__)
  asm("" : "+x"(v));
#else
  (void)v;
#endif
}

template <int TW, int TX>
inline void skinny_tile(const float* x, const float* w, int64_t in, const float* bias, float* y, int64_t ldy) {
  constexpr int L = kLanes<float>;
  const int64_t in_vec = in - in % L;
  Vec<float> acc[TW][TX] = {};
  for (int64_t k = 0; k < in_vec; k += L) {
    if (k % 16 == 0)  // one 64-byte line per W row
      for (int r = 0; r < TW; ++r) __builtin_prefetch(w + r * in + k + kPrefetch);
    Vec<float> wv[TW];
    for (int r = 0; r < TW; ++r) {
      wv[r] = vload(w + r * in + k);
      if (TX > 1) in_register(wv[r]);
    }
    for (int m = 0; m < TX; ++m) {
      Vec<float> xv = vload(x + m * in + k);
      if (TW > 1) in_register(xv);
      for (int r = 0; r < TW; ++r) acc[r][m] += wv[r] * xv;
    }
  }
  for (int r = 0; r < TW; ++r)
    for (int m = 0; m < TX; ++m) {
      float s = hsum(acc[r][m]);
      for (int64_t k = in_vec; k < in; ++k) s += x[m * in + k] * w[r * in + k];
      y[m * ldy + r] = bias ? s + bias[r] : s;
    }
}

// Rows [n0, n1) of W against TX rows of x.
template <int TX>
inline void skinny_block(const SkinnyLinearParams& p, const float* x, float* y, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + kTileW <= n1; n += kTileW)
    skinny_tile<kTileW, TX>(x, p.w + n * p.in, p.in, p.bias ? p.bias + n : nullptr, y + n, p.out);
  for (; n < n1; ++n) skinny_tile<1, TX>(x, p.w + n * p.in, p.in, p.bias ? p.bias + n : nullptr, y + n, p.out);
}

inline void run_skinny_linear(const SkinnyLinearParams& p) {
  const int64_t block = std::max<int64_t>(kTileW, kBlockBytes / (p.in * int64_t(sizeof(float))) / kTileW * kTileW);
  const int64_t blocks = (p.out + block - 1) / block;
  // Tasks of at least ~64k multiply-adds, so small layers do not pay for waking threads.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / (block * p.in * p.rows));
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n0 = b * block, n1 = std::min(p.out, n0 + block);
      int64_t m = 0;
      for (; m + kTileX <= p.rows; m += kTileX) skinny_block<kTileX>(p, p.x + m * p.in, p.y + m * p.out, n0, n1);
      const float* x = p.x + m * p.in;
      float* y = p.y + m * p.out;
      switch (p.rows - m) {
        case 5: skinny_block<5>(p, x, y, n0, n1); break;
        case 4: skinny_block<4>(p, x, y, n0, n1); break;
        case 3: skinny_block<3>(p, x, y, n0, n1); break;
        case 2: skinny_block<2>(p, x, y, n0, n1); break;
        case 1: skinny_block<1>(p, x, y, n0, n1); break;
        default: break;
      }
    }
  });
}

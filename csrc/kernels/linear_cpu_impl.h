// Skinny linear kernel body, compiled twice by linear_cpu.cpp (see cpu_isa.h), hence no include
// guard. Needs linear.h, ATen/Parallel.h, <algorithm>, <cstring> and cpu_isa.h first.
//
// y[m, n] = x[m, :] . w[n, :] (+ bias[n]) for a few rows m. The work is memory bound: W (up to
// the LM head's vocab x hidden) is streamed once from memory while x stays in L1. Threads take
// blocks of W rows; register tiles of kTileW rows of W x kTileX rows of x keep kTileW * kTileX
// vector accumulators, and each kTileW rows of W meet every group of x rows while in L1.
// in_register() pins each loaded vector to a register: left alone, GCC folds the load into
// every FMA that uses it, and the load ports, not the FMA units, bound the tile (measured: 10-25 %
// slower at 8-16 rows).
// Every output element is the same sum in the same order whatever the tile: lane-wise partial
// sums over k, the lanes added in a fixed pairwise tree (hsum_lanes), the scalar tail of k, then
// the bias.
#include "cpu_vec_impl.h"

// 12 accumulators + 3 W vectors + 1 x vector fill the 16 AVX2 registers; 7 loads per 12 FMAs
// (2 x 6 tiles need 8, and 8 rows then split 6 + 2): 3-5 % faster end to end at 4 and 8 rows.
constexpr int kTileW = 3;
constexpr int kTileX = 4;
constexpr int64_t kBlockBytes = 256 << 10;  // of W per task (the grain of the thread split)
constexpr int64_t kPrefetch = 4096;  // floats ahead (16 KiB) in W's stream; past W's end is harmless (no fault)

inline void in_register(Vec<float>& v) {
#if defined(__x86_64__)
  asm("" : "+x"(v));
#else
  (void)v;
#endif
}

// Lane i of the result: the sum of the lanes of v[i], as the pairwise tree
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); v holds kLanes vectors and is clobbered.
// A few shuffles and adds per level sum kLanes vectors at once, where summing each alone takes
// lanes - 1 dependent scalar adds (at 8 rows that epilogue cost a third of the kernel's time
// with W in L1).
template <typename V>  // Vec<float> (a template so that the other width's branch is discarded)
inline V hsum_lanes(V* v) {
  constexpr int L = int(sizeof(V) / sizeof(float));
  for (int n = L; n > 1; n /= 2)
    for (int i = 0; i < n / 2; ++i) {
      const V a = v[2 * i], b = v[2 * i + 1];
#if defined(__clang__) || __GNUC__ >= 12
      if constexpr (L == 8) {
        v[i] = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14) +
               __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
      } else {
        v[i] = __builtin_shufflevector(a, b, 0, 2, 4, 6) + __builtin_shufflevector(a, b, 1, 3, 5, 7);
      }
#else
      for (int j = 0; j < L / 2; ++j) {
        v[i][j] = a[2 * j] + a[2 * j + 1];
        v[i][j + L / 2] = b[2 * j] + b[2 * j + 1];
      }
#endif
    }
  return v[0];
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
  constexpr int N = TW * TX, G = (N + L - 1) / L;  // accumulators, groups of L of them
  Vec<float> group[G * L] = {};
  for (int i = 0; i < N; ++i) group[i] = acc[i / TX][i % TX];
  float sums[G * L];
  for (int g = 0; g < G; ++g) vstore(sums + g * L, hsum_lanes(group + g * L));
  for (int r = 0; r < TW; ++r)
    for (int m = 0; m < TX; ++m) {
      float s = sums[r * TX + m];
      for (int64_t k = in_vec; k < in; ++k) s += x[m * in + k] * w[r * in + k];
      y[m * ldy + r] = bias ? s + bias[r] : s;
    }
}

// W rows [n, n + TW) against every row of x, kTileX rows at a time: the later groups find the W
// rows in L1, and W streams from memory once, in order (measured: 10-25 % faster at 8 rows than
// running each group of x over a whole block of W, which pauses the stream between groups).
template <int TW>
inline void skinny_rows(const SkinnyLinearParams& p, int64_t n) {
  const float* w = p.w + n * p.in;
  const float* bias = p.bias ? p.bias + n : nullptr;
  int64_t m = 0;
  for (; m + kTileX <= p.rows; m += kTileX) skinny_tile<TW, kTileX>(p.x + m * p.in, w, p.in, bias, p.y + m * p.out + n, p.out);
  const float* x = p.x + m * p.in;
  float* y = p.y + m * p.out + n;
  static_assert(kTileX == 4, "the switch covers the rows left after whole tiles of kTileX");
  switch (p.rows - m) {
    case 3: skinny_tile<TW, 3>(x, w, p.in, bias, y, p.out); break;
    case 2: skinny_tile<TW, 2>(x, w, p.in, bias, y, p.out); break;
    case 1: skinny_tile<TW, 1>(x, w, p.in, bias, y, p.out); break;
    default: break;
  }
}

inline void run_skinny_linear(const SkinnyLinearParams& p) {
  const int64_t block = std::max<int64_t>(kTileW, kBlockBytes / (p.in * int64_t(sizeof(float))) / kTileW * kTileW);
  const int64_t blocks = (p.out + block - 1) / block;
  // Tasks of at least ~64k multiply-adds, so small layers do not pay for waking threads.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / (block * p.in * p.rows));
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    const int64_t n1 = std::min(p.out, b1 * block);
    int64_t n = b0 * block;
    for (; n + kTileW <= n1; n += kTileW) skinny_rows<kTileW>(p, n);
    for (; n < n1; ++n) skinny_rows<1>(p, n);
  });
}

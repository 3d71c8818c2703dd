// Vector helpers of the CPU kernel bodies (*_cpu_impl.h), which include this inside their ISA
// namespace (see cpu_isa.h), hence no include guard. Needs <algorithm>, <cstring>, cpu_isa.h and the
// including namespace's kVecBytes (the vector width of its ISA).

template <typename T>
using Vec = typename VecOf<T, kVecBytes>::type;
template <typename T>
constexpr int kLanes = int(kVecBytes / sizeof(T));

template <typename T>
inline Vec<T> vload(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void vstore(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
inline Vec<T> vbcast(T x) {
  return x - Vec<T>{};  // x - 0 is exact for every x (x + 0 is not, for -0), so this is a pure broadcast
}
// Lane-wise helpers; generic in the vector type V (Vec<T> itself is not deducible).
template <typename V>
inline auto hsum(V v) {
  auto s = v[0];
  for (int i = 1; i < int(sizeof(V) / sizeof(s)); ++i) s += v[i];
  return s;
}
template <typename V>
inline auto hmax(V v) {
  auto s = v[0];
  for (int i = 1; i < int(sizeof(V) / sizeof(s)); ++i) s = std::max(s, v[i]);
  return s;
}
template <typename V>
inline V vmax(V a, V b) {
  return a > b ? a : b;
}

// The CPU attention kernel, called through the dispatcher as a C++ host would, against
// attention written with plain ATen ops.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <limits>

#include "check.h"

namespace {

at::Tensor reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     bool causal, double scale) {
  auto scores = at::matmul(q.transpose(1, 2), k.transpose(1, 2).transpose(-1, -2)) * scale;  // [B,H,Lq,Lk]
  auto visible = mask.view({mask.size(0), 1, 1, mask.size(1)}).expand_as(scores).clone();
  if (causal) {
    const int64_t lq = q.size(1), lk = k.size(1);
    visible = visible & at::ones({lq, lk}, mask.options()).tril(lk - lq);
  }
  scores = scores.masked_fill(visible.logical_not(), -std::numeric_limits<double>::infinity());
  auto probs = at::softmax(scores, -1).nan_to_num(0.0);
  return at::matmul(probs, v.transpose(1, 2)).transpose(1, 2);
}

}  // namespace

int main() {
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("pygen::attention_fwd", "")
                .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                          const std::optional<at::Tensor>&,
                                                          const std::optional<at::Tensor>&, bool, double, int64_t)>();
  at::manual_seed(0);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  for (bool causal : {false, true}) {
    for (int64_t lq : {1, 7, 33}) {
      const int64_t batch = 3, heads = 4, lk = 41, dqk = 32, dv = 96;
      auto q = at::randn({batch, lq, heads, dqk}, f64);
      auto k = at::randn({batch, lk, heads, dqk}, f64);
      auto v = at::randn({batch, lk, heads, dv}, f64);
      auto mask = at::rand({batch, lk}, f64) > 0.3;
      mask.select(0, 2).fill_(false);  // a row with no visible key must give zeros, not NaN
      const double scale = 1.0 / std::sqrt(double(dqk));
      auto [out, lse] = op.call(q, k, v, mask, std::nullopt, causal, scale, 1);
      auto want = reference(q, k, v, mask, causal, scale);
      const double err = (out - want).abs().max().item<double>();
      std::printf("causal=%d lq=%ld max abs err %.3g\n", int(causal), long(lq), err);
      PYGEN_CHECK(err < 1e-10, "attention differs from the ATen reference");
      PYGEN_CHECK(!out.isnan().any().item<bool>(), "NaN in attention output");
    }
  }
  bool threw = false;
  try {
    auto q = at::randn({2, 3, 4, 8});
    op.call(q, at::randn({2, 5, 4, 8}), at::randn({2, 6, 4, 8}), std::nullopt, std::nullopt, false, 1.0, 1);
  } catch (const c10::Error& e) {
    threw = std::string(e.what()).find("k and v must agree") != std::string::npos;
  }
  PYGEN_CHECK(threw, "mismatched k/v lengths must raise a clear error");
  std::printf("test_attention: all checks passed\n");
  return 0;
}

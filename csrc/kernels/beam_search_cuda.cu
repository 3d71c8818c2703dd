// CUDA launchers and registration of the generation ops (kernel bodies in beam_search_cuda.cuh).
// Nothing here synchronises with the host: beam search's "done" flag stays on the device.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "beam_search.h"
#include "beam_search_cuda.cuh"

namespace pygen {
namespace {

using cuda::Cand;
using cuda::kThreads;

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

at::Tensor logits_process_cuda(
    const at::Tensor& logits, const at::Tensor& input_ids, bool log_softmax, double repetition_penalty,
    const std::optional<at::Tensor>& penalty_start, int64_t no_repeat_ngram_size,
    const std::optional<at::Tensor>& source_ids, int64_t encoder_no_repeat_ngram_size,
    const std::optional<at::Tensor>& bad_words, const std::optional<at::Tensor>& bad_word_offsets,
    const std::optional<at::Tensor>& banned, const std::optional<at::Tensor>& forced) {
  auto a = check_logits_process(logits, input_ids, log_softmax, repetition_penalty, penalty_start,
                                no_repeat_ngram_size, source_ids, encoder_no_repeat_ngram_size, bad_words,
                                bad_word_offsets, banned, forced);
  const c10::cuda::CUDAGuard guard(logits.device());
  auto out = at::empty(logits.sizes(), logits.options().dtype(at::kFloat));
  if (out.numel() == 0) return out;
  cuda::ProcessParams p{};
  p.rows = logits.size(0);
  p.vocab = logits.size(1);
  p.len = input_ids.size(1);
  p.ids_stride = input_ids.stride(0);
  p.logits_stride = logits.stride(0);
  p.ids = input_ids.data_ptr<int64_t>();
  p.log_softmax = log_softmax;
  p.penalise = repetition_penalty != 1.0;
  p.penalty = float(repetition_penalty);
  p.inv_penalty = 1.0f / p.penalty;  // PyTorch divides by a CPU scalar through its reciprocal
  p.penalty_start = ptr_or_null<int64_t>(a.penalty_start);
  p.ngram = no_repeat_ngram_size;
  p.encoder_ngram = a.encoder_no_repeat_ngram_size;
  if (a.source_ids.defined()) {
    p.source = a.source_ids.data_ptr<int64_t>();
    p.source_rows = a.source_ids.size(0);
    p.source_len = a.source_ids.size(1);
    p.source_stride = a.source_ids.stride(0);
  }
  if (a.bad_words.defined()) {
    p.bad_words = a.bad_words.data_ptr<int64_t>();
    p.bad_offsets = a.bad_word_offsets.data_ptr<int64_t>();
    p.n_bad = a.bad_word_offsets.size(0) - 1;
  }
  p.banned = ptr_or_null<int64_t>(a.banned);
  p.n_banned = a.banned.defined() ? a.banned.size(0) : 0;
  p.forced = ptr_or_null<int64_t>(a.forced);
  p.n_forced = a.forced.defined() ? a.forced.size(0) : 0;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "logits_process_cuda", [&] {
    cuda::logits_process_kernel<scalar_t><<<p.rows, kThreads, 0, stream>>>(p, logits.data_ptr<scalar_t>(),
                                                                         out.data_ptr<float>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> beam_topk_cuda(const at::Tensor& scores, const at::Tensor& beam_scores,
                                                  int64_t k) {
  check_beam_topk(scores, beam_scores, k);
  const c10::cuda::CUDAGuard guard(scores.device());
  const int64_t batch = beam_scores.size(0), beams = beam_scores.size(1), vocab = scores.size(1);
  const int64_t row_k = std::min(k, vocab);  // the item's top k lies in the union of its rows' top k
  auto bytes = scores.options().dtype(at::kByte);
  auto row_cands = at::empty({batch * beams * row_k * int64_t(sizeof(Cand))}, bytes);
  auto cands = at::empty({batch * k * int64_t(sizeof(Cand))}, bytes);
  auto values = at::empty({batch, k}, scores.options());
  auto indices = at::empty({batch, k}, scores.options().dtype(at::kLong));
  auto stream = at::cuda::getCurrentCUDAStream();
  auto* rows = reinterpret_cast<Cand*>(row_cands.data_ptr());
  auto* merged = reinterpret_cast<Cand*>(cands.data_ptr());
  cuda::beam_row_topk_kernel<<<batch * beams, kThreads, 0, stream>>>(
      scores.data_ptr<float>(), scores.stride(0), beam_scores.data_ptr<float>(), beams, vocab, row_k, rows);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  cuda::beam_merge_topk_kernel<<<batch, kThreads, 0, stream>>>(rows, beams * row_k, k, merged);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const int64_t n = batch * k;
  cuda::split_cands_kernel<<<(n + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      merged, n, values.data_ptr<float>(), indices.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {values, indices};
}

void beam_update_cuda(const at::Tensor& cand_scores, const at::Tensor& cand_ids, const at::Tensor& running_seqs,
                      const at::Tensor& running_scores, const at::Tensor& running_beams, const at::Tensor& seqs,
                      const at::Tensor& seq_scores, const at::Tensor& seq_beams, const at::Tensor& finished,
                      const at::Tensor& undone, const at::Tensor& next_tokens, const at::Tensor& parents,
                      const at::Tensor& done, const std::optional<at::Tensor>& eos_ids, int64_t vocab,
                      int64_t cur_len, double length_penalty, int64_t early_stopping) {
  const BeamState s = check_beam_state(running_seqs, running_scores, running_beams, seqs, seq_scores, seq_beams,
                                       finished, undone, next_tokens, parents, done);
  check_beam_candidates(s, cand_scores, cand_ids, eos_ids, vocab, cur_len);
  const BeamStep step = make_beam_step(s, vocab, cur_len, length_penalty, early_stopping);
  const c10::cuda::CUDAGuard guard(running_seqs.device());
  const int64_t nb = s.beams, k = cand_scores.size(1);
  const int64_t seq_copy = cur_len + 1, beam_copy = cur_len + 1 - s.prompt_len;
  auto opts = running_seqs.options();
  auto old_run = at::empty({s.batch, nb, seq_copy}, opts);
  auto old_fin = at::empty({s.batch, nb, seq_copy}, opts);
  auto old_run_beams = at::empty({s.batch, nb, beam_copy}, opts.dtype(at::kInt));
  auto old_fin_beams = at::empty({s.batch, nb, beam_copy}, opts.dtype(at::kInt));
  auto item_flags = at::empty({2, s.batch}, opts.dtype(at::kBool));
  cuda::UpdateParams p{};
  p.cand_scores = cand_scores.data_ptr<float>();
  p.cand_ids = cand_ids.data_ptr<int64_t>();
  p.running_seqs = running_seqs.data_ptr<int64_t>();
  p.running_scores = running_scores.data_ptr<float>();
  p.running_beams = running_beams.data_ptr<int32_t>();
  p.seqs = seqs.data_ptr<int64_t>();
  p.seq_scores = seq_scores.data_ptr<float>();
  p.seq_beams = seq_beams.data_ptr<int32_t>();
  p.finished = finished.data_ptr<bool>();
  p.undone = undone.data_ptr<bool>();
  p.next_tokens = next_tokens.data_ptr<int64_t>();
  p.parents = parents.data_ptr<int64_t>();
  p.done = done.data_ptr<bool>();
  p.eos = eos_ids ? eos_ids->data_ptr<int64_t>() : nullptr;
  p.n_eos = eos_ids ? eos_ids->size(0) : 0;
  p.old_run = old_run.data_ptr<int64_t>();
  p.old_fin = old_fin.data_ptr<int64_t>();
  p.old_run_beams = old_run_beams.data_ptr<int32_t>();
  p.old_fin_beams = old_fin_beams.data_ptr<int32_t>();
  p.item_finished = item_flags.data_ptr<bool>();
  p.item_hit = p.item_finished + s.batch;
  p.beams = nb;
  p.k = k;
  p.vocab = vocab;
  p.cur_len = cur_len;
  p.max_length = s.max_length;
  p.prompt_len = s.prompt_len;
  p.early_stopping = early_stopping;
  p.inv_finish_denom = 1.0f / step.finish_denom;
  p.inv_best_denom = 1.0f / step.best_denom;
  // parent, token, pick, keep (int64); run_score, fin_score, old_score (float); hit, old_flag (bool)
  const size_t smem = (2 * k + 2 * nb) * sizeof(int64_t) + (2 * k + nb) * sizeof(float) + (k + nb) * sizeof(bool);
  auto stream = at::cuda::getCurrentCUDAStream();
  cuda::beam_update_kernel<<<s.batch, kThreads, smem, stream>>>(p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  cuda::beam_done_kernel<<<1, 1, 0, stream>>>(p.undone, p.item_finished, p.item_hit, s.batch, early_stopping,
                                              done.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void reorder_rows_cuda(at::TensorList buffers, const at::Tensor& index, int64_t length) {
  std::vector<at::Tensor> bufs(buffers.begin(), buffers.end());
  check_reorder_rows(bufs, index, length);
  if (bufs.empty() || length == 0) return;
  const c10::cuda::CUDAGuard guard(index.device());
  const int64_t rows = index.size(0);
  auto stream = at::cuda::getCurrentCUDAStream();
  for (size_t first = 0; first < bufs.size(); first += cuda::kMaxBuffers) {
    const size_t count = std::min<size_t>(cuda::kMaxBuffers, bufs.size() - first);
    cuda::ReorderParams p{};
    int64_t total = 0, widest = 0;
    bool vectorised = true;
    for (size_t n = 0; n < count; ++n) {
      const at::Tensor& buf = bufs[first + n];
      p.base[n] = static_cast<char*>(buf.data_ptr());
      p.row_bytes[n] = buf.stride(0) * buf.element_size();
      p.prefix_bytes[n] = length * buf.stride(1) * buf.element_size();
      p.scratch_offset[n] = total;
      total += (rows * p.prefix_bytes[n] + 15) / 16 * 16;
      widest = std::max(widest, p.prefix_bytes[n]);
      vectorised = vectorised && reinterpret_cast<uintptr_t>(p.base[n]) % 16 == 0 && p.row_bytes[n] % 16 == 0 &&
                   p.prefix_bytes[n] % 16 == 0;
    }
    auto scratch = at::empty({total}, index.options().dtype(at::kByte));
    p.scratch = static_cast<char*>(scratch.data_ptr());
    p.index = index.data_ptr<int64_t>();
    p.vectorised = vectorised;
    const int64_t units = vectorised ? widest / 16 : widest;
    const dim3 grid(unsigned(std::clamp<int64_t>((units + kThreads - 1) / kThreads, 1, 1024)), unsigned(rows),
                    unsigned(count));
    for (int stage = 0; stage < 2; ++stage) {
      cuda::reorder_rows_kernel<<<grid, kThreads, 0, stream>>>(p, stage);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(pygen, CUDA, m) {
  m.impl("logits_process", &logits_process_cuda);
  m.impl("beam_topk", &beam_topk_cuda);
  m.impl("beam_update_", &beam_update_cuda);
  m.impl("reorder_rows_", &reorder_rows_cuda);
}

}  // namespace pygen

// Schemas of every pygen operator, in one place. Implementations register per device
// (CPU in csrc/kernels/*_cpu.cpp, CUDA in *_cuda.cu, Meta for torch.compile) with
// TORCH_LIBRARY_IMPL next to their kernels.
#include <torch/library.h>

TORCH_LIBRARY(pygen, m) {
  // Fused attention. q [B, Lq, H, Dqk], k [B/kv_group, Lk, H, Dqk], v [B/kv_group, Lk, H, Dv]
  // (last dim contiguous, other strides free). key_padding_mask [B/kv_group, Lk] bool, true =
  // attend. attn_bias additive, broadcastable to [B, H, Lq, Lk]. causal is bottom-right aligned
  // (query i sees keys j <= i + Lk - Lq). Query row b reads kv row b / kv_group (beams share the
  // encoder's keys). Returns out [B, Lq, H, Dv] and the row log-sum-exp [B, H, Lq] (float32,
  // float64 for float64 inputs; -inf for rows with no visible key, whose output is 0).
  m.def("attention_fwd(Tensor q, Tensor k, Tensor v, Tensor? key_padding_mask, Tensor? attn_bias, "
        "bool causal, float scale, int kv_group) -> (Tensor, Tensor)");
  // Its gradients with respect to q, k, v, recomputing probabilities from the saved lse.
  // attn_bias is a constant here (no gradient).
  m.def("attention_bwd(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, "
        "Tensor? key_padding_mask, Tensor? attn_bias, bool causal, float scale, int kv_group) "
        "-> (Tensor, Tensor, Tensor)");

  // y = input weight^T + bias, at::linear's semantics (csrc/kernels/linear*): decoding shapes
  // (a few rows of float32 input) run pygen's skinny kernel on CPU.
  m.def("linear(Tensor input, Tensor weight, Tensor? bias) -> Tensor");

  // ---- generation (csrc/kernels/beam_search*) ----
  // Logits processors of transformers' generate(), on logits [R, V] (any float dtype) given the
  // sequences so far input_ids [R, T]; returns float32 [R, V]. In order: optional log-softmax,
  // repetition penalty (positions >= penalty_start[r]), no-repeat n-grams, encoder no-repeat
  // n-grams (source row r / (R / source rows)), bad words (CSR bad_words/bad_word_offsets),
  // banned ids -> -inf, and when forced is given the row becomes -inf except forced ids -> 0.
  m.def("logits_process(Tensor logits, Tensor input_ids, bool log_softmax, float repetition_penalty, "
        "Tensor? penalty_start, int no_repeat_ngram_size, Tensor? source_ids, "
        "int encoder_no_repeat_ngram_size, Tensor? bad_words, Tensor? bad_word_offsets, Tensor? banned, "
        "Tensor? forced) -> Tensor");
  // Beam search's top-k over beams x vocab: scores [B*nb, V] float32 plus beam_scores [B, nb];
  // returns the k best (value desc, then flat index beam*V+token asc) values [B, k] and flat ids.
  m.def("beam_topk(Tensor scores, Tensor beam_scores, int k) -> (Tensor, Tensor)");
  // One step of transformers 5.23's vectorised beam-search bookkeeping given k candidates per item:
  // picks the next running beams, merges finished hypotheses (length penalty over generated
  // tokens), updates the early-stop heuristic, writes next_tokens/parents and sets done.
  // early_stopping: 0 False, 1 True, 2 "never". A no-op once done is set.
  m.def("beam_update_(Tensor cand_scores, Tensor cand_ids, Tensor(a!) running_seqs, Tensor(b!) running_scores, "
        "Tensor(c!) running_beams, Tensor(d!) seqs, Tensor(e!) seq_scores, Tensor(f!) seq_beams, "
        "Tensor(g!) finished, Tensor(h!) undone, Tensor(i!) next_tokens, Tensor(j!) parents, Tensor(k!) done, "
        "Tensor? eos_ids, int vocab, int cur_len, float length_penalty, int early_stopping) -> ()");
  // KV-cache reorder for beam search: row i of each buffer [R, capacity, ...] takes the first
  // `length` positions of row index[i] (in place; rows with index[i] == i are not touched).
  m.def("reorder_rows_(Tensor(a!)[] buffers, Tensor index, int length) -> ()");
}

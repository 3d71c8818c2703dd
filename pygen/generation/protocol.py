"""The contract between model classes and the generation engine.

A model that ``generate()`` can drive implements these three methods; the engine never
looks inside the model. Encoder-decoder models run their encoder once in ``gen_encode``;
``gen_new_cache`` computes every layer's cross-attention keys/values once per *source*
sequence (beams share them through ``kv_group``) and sizes the self-attention buffers for
the whole generation, so no step reallocates; ``gen_step`` feeds the newest tokens.
``gen_step_outputs`` is ``gen_step`` that also returns what ``output_attentions`` /
``output_hidden_states`` ask for: the slower path, taken only then.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Protocol

from torch import Tensor

from ..cache import KVCache


class StepOutputs(NamedTuple):
    """One decoder step as ``gen_step_outputs`` returns it; per-layer tuples as transformers' model
    outputs hold them (``None`` where not asked for or, for cross-attention, without a source)."""

    logits: Tensor  # [batch_size, n, vocab]
    attentions: Optional[tuple[Tensor, ...]]  # self-attention probabilities [batch_size, heads, n, cached + n]
    cross_attentions: Optional[tuple[Tensor, ...]]  # [batch_size, heads, n, source_len]
    hidden_states: Optional[tuple[Tensor, ...]]  # embeddings, then each layer's output [batch_size, n, hidden]


class GenerationModel(Protocol):
    def gen_encode(self, input_ids: Tensor, attention_mask: Tensor) -> Optional[Tensor]:
        """Encoder hidden states ``[batch, src_len, hidden]``; ``None`` for decoder-only models."""

    def gen_new_cache(self, encoder_hidden_states: Optional[Tensor], encoder_attention_mask: Optional[Tensor],
                      batch_size: int, kv_group: int, capacity: int) -> KVCache:
        """A cache for ``batch_size`` decoder rows (= source rows x ``kv_group``) of up to ``capacity`` positions.

        ``encoder_hidden_states``/``encoder_attention_mask`` are at the source batch size;
        ``kv_group`` decoder rows read each source row.
        """

    def gen_step(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Logits ``[batch_size, n, vocab]`` for the ``n`` new tokens ``input_ids`` ``[batch_size, n]``.

        Positions continue from ``cache.length``; ``attention_mask`` ``[batch_size, cache.length + n]``
        (1 = real token) masks left padding of decoder-only prompts. Advances the cache by ``n``.
        """

    def gen_step_outputs(self, input_ids: Tensor, cache: KVCache, attention_mask: Optional[Tensor],
                         output_attentions: bool, output_hidden_states: bool) -> StepOutputs:
        """``gen_step``, also returning the step's attention probabilities and/or hidden states."""

"""What ``generate(..., return_dict_in_generate=True)`` returns (transformers' class and field names)."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from ..modeling_outputs import ModelOutput


class GenerateDecoderOnlyOutput(ModelOutput):
    """Greedy or sampled outputs of a decoder-only model.

    ``sequences`` ``[batch * num_return_sequences, length]``: prompt plus generated tokens;
    ``scores``: one ``[rows, vocab]`` tensor per step, the processed scores the token was chosen
    from (``output_scores``); ``logits``: the raw logits per step (``output_logits``);
    ``attentions`` / ``hidden_states`` (``output_attentions`` / ``output_hidden_states``): per step,
    the decoder's per-layer self-attention probabilities ``[rows, heads, new, cached + new]`` /
    hidden states ``[rows, new, hidden]`` (embeddings first). No ``past_key_values``: the cache is
    generation's own, sized for it, and is not returned.
    """

    sequences: Optional[Tensor] = None
    scores: Optional[tuple[Tensor, ...]] = None
    logits: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[tuple[Tensor, ...], ...]] = None
    hidden_states: Optional[tuple[tuple[Tensor, ...], ...]] = None


class GenerateEncoderDecoderOutput(ModelOutput):
    """Greedy or sampled outputs of an encoder-decoder model (``sequences`` are decoder ids); the
    encoder's attentions / hidden states once, the decoder's (and cross-attention's) per step."""

    sequences: Optional[Tensor] = None
    scores: Optional[tuple[Tensor, ...]] = None
    logits: Optional[tuple[Tensor, ...]] = None
    encoder_attentions: Optional[tuple[Tensor, ...]] = None
    encoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    decoder_attentions: Optional[tuple[tuple[Tensor, ...], ...]] = None
    cross_attentions: Optional[tuple[tuple[Tensor, ...], ...]] = None
    decoder_hidden_states: Optional[tuple[tuple[Tensor, ...], ...]] = None


class GenerateBeamDecoderOnlyOutput(ModelOutput):
    """Beam-search outputs of a decoder-only model.

    ``sequences_scores`` ``[rows]``: each returned hypothesis' length-normalised log-probability
    (with ``output_scores``); ``scores``: per step the processed log-probs ``[batch * num_beams,
    vocab]``; ``beam_indices`` ``[rows, generated]``: per generated token the row of the beam it
    came from (``-1`` past the end of a hypothesis).
    """

    sequences: Optional[Tensor] = None
    sequences_scores: Optional[Tensor] = None
    scores: Optional[tuple[Tensor, ...]] = None
    logits: Optional[tuple[Tensor, ...]] = None
    beam_indices: Optional[Tensor] = None
    attentions: Optional[tuple[tuple[Tensor, ...], ...]] = None
    hidden_states: Optional[tuple[tuple[Tensor, ...], ...]] = None


class GenerateBeamEncoderDecoderOutput(ModelOutput):
    """Beam-search outputs of an encoder-decoder model (per-step fields as in the greedy output)."""

    sequences: Optional[Tensor] = None
    sequences_scores: Optional[Tensor] = None
    scores: Optional[tuple[Tensor, ...]] = None
    logits: Optional[tuple[Tensor, ...]] = None
    beam_indices: Optional[Tensor] = None
    encoder_attentions: Optional[tuple[Tensor, ...]] = None
    encoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    decoder_attentions: Optional[tuple[tuple[Tensor, ...], ...]] = None
    cross_attentions: Optional[tuple[tuple[Tensor, ...], ...]] = None
    decoder_hidden_states: Optional[tuple[tuple[Tensor, ...], ...]] = None

"""What ``generate(..., return_dict_in_generate=True)`` returns (transformers' class and field names)."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from ..modeling_outputs import ModelOutput


class GenerateDecoderOnlyOutput(ModelOutput):
    """Greedy or sampled outputs of a decoder-only model.

    ``sequences`` ``[batch * num_return_sequences, length]``: prompt plus generated tokens;
    ``scores``: one ``[rows, vocab]`` tensor per step, the processed scores the token was chosen
    from (``output_scores``); ``logits``: the raw logits per step (``output_logits``).
    """

    sequences: Optional[Tensor] = None
    scores: Optional[tuple[Tensor, ...]] = None
    logits: Optional[tuple[Tensor, ...]] = None


class GenerateEncoderDecoderOutput(GenerateDecoderOnlyOutput):
    """Greedy or sampled outputs of an encoder-decoder model (``sequences`` are decoder ids)."""


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


class GenerateBeamEncoderDecoderOutput(GenerateBeamDecoderOnlyOutput):
    """Beam-search outputs of an encoder-decoder model."""

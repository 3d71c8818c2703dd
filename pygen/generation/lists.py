"""transformers' containers for custom logits processors and stopping criteria, so code written
for ``transformers.generate(logits_processor=LogitsProcessorList([...]), stopping_criteria=...)``
runs unchanged: generate() takes any list of callables, these are such lists."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


class LogitsProcessorList(list):
    """Callables ``(input_ids, scores) -> scores``, applied in order when the list is called."""

    def __call__(self, input_ids: Tensor, scores: Tensor, **kwargs) -> Tensor:
        for processor in self:
            scores = processor(input_ids, scores, **kwargs)
        return scores


class StoppingCriteria:
    """Base class of a custom stopping criterion: ``(input_ids, scores) -> bool [rows]``."""

    def __call__(self, input_ids: Tensor, scores: Optional[tuple[Tensor, ...]], **kwargs) -> Tensor:
        raise NotImplementedError("StoppingCriteria needs to be subclassed")


class StoppingCriteriaList(list):
    """Criteria whose verdicts are or-ed per row when the list is called."""

    def __call__(self, input_ids: Tensor, scores: Optional[tuple[Tensor, ...]], **kwargs) -> Tensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for criterion in self:
            done = done | torch.as_tensor(criterion(input_ids, scores, **kwargs), dtype=torch.bool,
                                          device=input_ids.device)
        return done

"""Model output containers that behave like transformers' ``ModelOutput``.

An output is an ordered dict of its non-``None`` fields that also exposes every declared
field as an attribute (``None`` when unset), so all of these work::

    out.logits            # attribute
    out["logits"]         # dict key (only fields that are set)
    out[0], out[:2]       # tuple indexing over the fields that are set, in declared order
    out.to_tuple()        # what ``return_dict=False`` returns

Subclasses declare their fields as annotated class attributes defaulting to ``None``.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import Any, ClassVar, Optional

from torch import Tensor


class ModelOutput(OrderedDict):
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[str] = []
        for klass in reversed(cls.__mro__):
            for name in inspect.get_annotations(klass):
                if not name.startswith("_") and name not in fields:
                    fields.append(name)
        cls._fields = tuple(fields)

    def __init__(self, **kwargs: Any):
        super().__init__()
        unknown = set(kwargs) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}; fields: {self._fields}")
        for name in self._fields:
            value = kwargs.get(name)
            if value is not None:
                self[name] = value

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(key)
        return self.to_tuple()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        object.__setattr__(self, key, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._fields and value is not None:
            super().__setitem__(name, value)
        object.__setattr__(self, name, value)

    def __reduce__(self):
        # Rebuild through __init__ so pickling and deepcopy keep attributes and keys in sync.
        return type(self), (), None, None, iter(self.items())

    def to_tuple(self) -> tuple[Any, ...]:
        """The values of the fields that are set, in declared order."""
        return tuple(self[name] for name in self._fields if name in self)


class BaseModelOutput(ModelOutput):
    last_hidden_state: Optional[Tensor] = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None


class BaseModelOutputWithPastAndCrossAttentions(ModelOutput):
    last_hidden_state: Optional[Tensor] = None
    past_key_values: Any = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None


class Seq2SeqModelOutput(ModelOutput):
    last_hidden_state: Optional[Tensor] = None
    past_key_values: Any = None
    decoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    decoder_attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None
    encoder_last_hidden_state: Optional[Tensor] = None
    encoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    encoder_attentions: Optional[tuple[Tensor, ...]] = None


class Seq2SeqLMOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    past_key_values: Any = None
    decoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    decoder_attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None
    encoder_last_hidden_state: Optional[Tensor] = None
    encoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    encoder_attentions: Optional[tuple[Tensor, ...]] = None


class Seq2SeqSequenceClassifierOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    past_key_values: Any = None
    decoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    decoder_attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None
    encoder_last_hidden_state: Optional[Tensor] = None
    encoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    encoder_attentions: Optional[tuple[Tensor, ...]] = None


class Seq2SeqQuestionAnsweringModelOutput(ModelOutput):
    loss: Optional[Tensor] = None
    start_logits: Optional[Tensor] = None
    end_logits: Optional[Tensor] = None
    past_key_values: Any = None
    decoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    decoder_attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None
    encoder_last_hidden_state: Optional[Tensor] = None
    encoder_hidden_states: Optional[tuple[Tensor, ...]] = None
    encoder_attentions: Optional[tuple[Tensor, ...]] = None


class CausalLMOutputWithCrossAttentions(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Optional[Tensor] = None
    past_key_values: Any = None
    hidden_states: Optional[tuple[Tensor, ...]] = None
    attentions: Optional[tuple[Tensor, ...]] = None
    cross_attentions: Optional[tuple[Tensor, ...]] = None

"""Streamers: receive tokens while ``generate()`` produces them (transformers' ``put``/``end`` protocol).

``generate(streamer=...)`` first calls ``put`` with the prompt (the decoder prompt of an
encoder-decoder model), then once per step with the new token of each row (a CPU tensor), and
``end()`` when done. Greedy decoding and sampling stream; beam search does not (its best
hypothesis is only known at the end).
"""
from __future__ import annotations

from queue import Queue
from typing import Any, Optional


class BaseStreamer:
    def put(self, value) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


def _is_cjk(char: str) -> bool:
    """CJK ideographs are words on their own: text ending in one can be shown at once."""
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                              (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                                              (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


class TextStreamer(BaseStreamer):
    """Decodes the tokens of a batch of one and prints text to stdout as soon as whole words are formed.

    Args:
        tokenizer: anything with ``decode(ids, **decode_kwargs) -> str``.
        skip_prompt: do not print the prompt.
        decode_kwargs: passed to ``tokenizer.decode`` (e.g. ``skip_special_tokens=True``).
    """

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, **decode_kwargs: Any):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self._ids: list[int] = []  # tokens of the text not yet fully shown
        self._shown = 0  # characters of their decoding already shown
        self._prompt_next = True

    def put(self, value) -> None:
        if value.dim() > 1:
            if value.shape[0] > 1:
                raise ValueError("TextStreamer only supports batch size 1")
            value = value[0]
        if self._prompt_next:
            self._prompt_next = False
            if self.skip_prompt:
                return
        self._ids.extend(value.tolist())
        text = self.tokenizer.decode(self._ids, **self.decode_kwargs)
        if text.endswith("\n"):  # a finished line: show it all and start afresh
            new, self._ids, self._shown = text[self._shown:], [], 0
        elif text and _is_cjk(text[-1]):
            new = text[self._shown:]
            self._shown += len(new)
        else:  # hold back the last, possibly incomplete, word
            new = text[self._shown:text.rfind(" ") + 1]
            self._shown += len(new)
        self.on_finalized_text(new)

    def end(self) -> None:
        new = ""
        if self._ids:
            new = self.tokenizer.decode(self._ids, **self.decode_kwargs)[self._shown:]
        self._ids, self._shown, self._prompt_next = [], 0, True
        self.on_finalized_text(new, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        """Called with each piece of finished text; prints it (subclasses redirect it)."""
        print(text, flush=True, end=None if stream_end else "")


class TextIteratorStreamer(TextStreamer):
    """A :class:`TextStreamer` whose text is read by iterating over it (e.g. while ``generate()``
    runs in another thread); ``timeout`` bounds each wait, in seconds."""

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, timeout: Optional[float] = None,
                 **decode_kwargs: Any):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: Queue = Queue()
        self.timeout = timeout
        self._stop = object()

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self._stop, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self._stop:
            raise StopIteration
        return value

"""Generation: configuration, logits processors and the greedy / beam / sampling loops."""
from .config import GenerationConfig

__all__ = ["GenerationConfig"]

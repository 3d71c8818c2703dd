"""Generation: configuration, logits processors, the greedy / sampling / beam-search loops, streaming."""
from .batching import generate_batches
from .config import GenerationConfig
from .lists import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from .mixin import GenerationMixin
from .outputs import (GenerateBeamDecoderOnlyOutput, GenerateBeamEncoderDecoderOutput, GenerateDecoderOnlyOutput,
                      GenerateEncoderDecoderOutput)
from .streamers import BaseStreamer, TextIteratorStreamer, TextStreamer

__all__ = ["BaseStreamer", "GenerateBeamDecoderOnlyOutput", "GenerateBeamEncoderDecoderOutput",
           "GenerateDecoderOnlyOutput", "GenerateEncoderDecoderOutput", "GenerationConfig", "GenerationMixin",
           "LogitsProcessorList", "StoppingCriteria", "StoppingCriteriaList", "TextIteratorStreamer", "TextStreamer",
           "generate_batches"]

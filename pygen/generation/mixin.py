"""``GenerationMixin``: ``generate()`` for every model implementing ``protocol.GenerationModel``.

Arguments, defaults and precedence are transformers 5.23's: explicit kwargs, then
``generation_config=``, then ``model.generation_config``, then the global defaults. Everything
is validated on the host before the first forward; then the encoder runs once, the cache is
allocated once for the whole generation, and one of the loops in :mod:`.search` runs.
"""
from __future__ import annotations

import logging
import numbers
import time
import warnings
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor

from ..errors import GenerationError, InputError
from .config import FIELDS, GLOBAL_DEFAULTS, UNSUPPORTED, GenerationConfig, token_ids
from .logits_process import LogitsProcessor
from .outputs import (GenerateBeamDecoderOnlyOutput, GenerateBeamEncoderDecoderOutput, GenerateDecoderOnlyOutput,
                      GenerateEncoderDecoderOutput)
from .search import DecodeRun, StepRecords, beam_search, greedy_or_sample
from .streamers import BaseStreamer

logger = logging.getLogger("pygen")

# generate() kwargs that are model inputs rather than generation parameters.
_MODEL_INPUTS = ("input_ids", "attention_mask", "encoder_outputs", "decoder_input_ids", "token_type_ids",
                 "inputs_embeds", "decoder_attention_mask")

# What transformers does with ``generate(field=None)`` for fields that have a global default: the
# processor or option is off. (None for max_length, num_beams, num_return_sequences,
# length_penalty or use_cache fails in transformers; pygen keeps the resolved value.)
_NONE_MEANS = {"min_length": 0, "early_stopping": False, "do_sample": False, "temperature": 1.0, "top_k": 0,
               "top_p": 1.0, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
               "encoder_no_repeat_ngram_size": 0, "output_scores": False, "output_logits": False,
               "return_dict_in_generate": False, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
               "encoder_repetition_penalty": 1.0, "remove_invalid_values": False, "renormalize_logits": False}


class GenerationMixin:
    """Adds :meth:`generate` to a model that implements ``gen_encode``/``gen_new_cache``/``gen_step``."""

    @torch.no_grad()
    def generate(self, inputs: Optional[Tensor] = None, generation_config: Optional[GenerationConfig] = None,
                 logits_processor: Optional[Iterable[Callable]] = None,
                 prefix_allowed_tokens_fn: Optional[Callable[[int, Tensor], list[int]]] = None,
                 stopping_criteria: Optional[Iterable[Callable]] = None, streamer: Optional[BaseStreamer] = None,
                 generator: Optional[torch.Generator] = None, seed: Optional[int] = None, **kwargs: Any):
        """Generate token ids (transformers' ``generate`` arguments, defaults and outputs).

        Args:
            inputs: ``[batch, len]`` token ids: the encoder input of an encoder-decoder model, the
                prompt of a decoder-only one (left-padded when batched). Also accepted as ``input_ids=``.
            generation_config: base parameters (default ``self.generation_config``); kwargs override it.
            logits_processor: extra processors, callables ``(input_ids, scores) -> scores``, applied
                after the built-in ones and before the sampling warpers (transformers' place for them).
            prefix_allowed_tokens_fn: ``(batch_id, input_ids_row) -> allowed token ids``, constrains
                every step as transformers' ``PrefixConstrainedLogitsProcessor`` does.
            stopping_criteria: extra criteria, callables ``(input_ids, scores) -> bool or bool [rows]``
                (``scores``: the scores so far when returned, else None), checked after each token
                as transformers does; greedy decoding and sampling only.
            streamer: receives the prompt, then each new token (greedy and sampling only).
            generator / seed: the random source of sampling (default: torch's global generator).
            **kwargs: ``GenerationConfig`` fields (max_length, max_new_tokens, min_length,
                min_new_tokens, max_time (greedy / sampling), num_beams, num_return_sequences,
                length_penalty, early_stopping, no_repeat_ngram_size, encoder_no_repeat_ngram_size,
                repetition_penalty, bad_words_ids, forced_bos_token_id, forced_eos_token_id,
                decoder_start_token_id (one id, or one per batch row), bos/eos/pad_token_id, do_sample,
                temperature, top_k, top_p, min_p, typical_p, epsilon_cutoff, eta_cutoff,
                encoder_repetition_penalty, remove_invalid_values, exponential_decay_length_penalty,
                suppress_tokens, begin_suppress_tokens, renormalize_logits, sequence_bias, output_scores,
                output_logits, output_attentions, output_hidden_states, return_dict_in_generate) and
                model inputs: ``attention_mask``, ``encoder_outputs``
                (encoder-decoder: skip the encoder), ``inputs_embeds`` (encoder-decoder: the encoder's
                input embeddings instead of ids), ``decoder_input_ids`` (decoder prompt),
                ``token_type_ids`` (what a BERT tokenizer returns: the encoder's segment ids; a
                decoder-only prompt takes only zeros, which is what it gets without them).

        Returns:
            ``sequences`` ``[batch * num_return_sequences, length]`` (int64), or with
            ``return_dict_in_generate=True`` a ``Generate*Output`` holding them and, on request,
            ``scores``, ``logits``, ``sequences_scores``, ``beam_indices`` and the attentions / hidden
            states (BART's attention probabilities are those of transformers' eager attention; the
            BERT family returns hidden states only). Asking for attentions or hidden states takes a
            slower decoder step that materialises them.
        """
        started = time.monotonic()  # max_time counts from here
        model_inputs = {k: kwargs.pop(k) for k in _MODEL_INPUTS if k in kwargs}
        config, max_length_is_default = self._resolve_generation_config(generation_config, kwargs)
        custom = [] if logits_processor is None else list(logits_processor)
        if not all(callable(p) for p in custom):
            raise GenerationError("`logits_processor` must be a list of callables (input_ids, scores) -> scores")
        criteria = [] if stopping_criteria is None else list(stopping_criteria)
        if not all(callable(c) for c in criteria):
            raise GenerationError("`stopping_criteria` must be a list of callables (input_ids, scores) -> bool")
        if prefix_allowed_tokens_fn is not None and not callable(prefix_allowed_tokens_fn):
            raise GenerationError("`prefix_allowed_tokens_fn` must be callable (batch_id, input_ids) -> token ids")
        is_encoder_decoder = bool(getattr(self.config, "is_encoder_decoder", False))
        if seed is not None:
            if generator is not None:
                raise GenerationError("pass either `seed` or `generator`, not both")
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                raise GenerationError(f"`seed` must be an int, got {type(seed).__name__} {seed!r}")
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        if generator is not None and not isinstance(generator, torch.Generator):
            raise GenerationError(f"`generator` must be a torch.Generator, got {type(generator).__name__}")
        if streamer is not None and not (callable(getattr(streamer, "put", None))
                                         and callable(getattr(streamer, "end", None))):
            raise GenerationError(f"`streamer` must have put() and end() methods (a BaseStreamer), got "
                                  f"{type(streamer).__name__}")

        # ---- inputs ------------------------------------------------------------------------------
        if inputs is not None and model_inputs.get("input_ids") is not None:
            raise GenerationError("pass the prompt either as `inputs` or as `input_ids`, not both")
        input_ids = inputs if inputs is not None else model_inputs.get("input_ids")
        attention_mask = model_inputs.get("attention_mask")
        encoder_hidden = _encoder_hidden_states(model_inputs.get("encoder_outputs"))
        # output_attentions / output_hidden_states: collected only for a returned dict, as in transformers.
        want_attentions = bool(config.return_dict_in_generate and config.output_attentions)
        want_hidden = bool(config.return_dict_in_generate and config.output_hidden_states)
        encoder_extras = {}  # the encoder's attentions / hidden states, when asked for
        if encoder_hidden is not None and (want_attentions or want_hidden):
            encoder_extras = _encoder_extras(model_inputs["encoder_outputs"], want_attentions, want_hidden)
        if model_inputs.get("inputs_embeds") is not None:
            if not is_encoder_decoder:
                raise GenerationError(f"{type(self).__name__} is decoder-only: pygen's generate() takes its prompt as "
                                      "`input_ids`, not `inputs_embeds`")
            if input_ids is not None or encoder_hidden is not None:
                raise GenerationError("pass the source as one of `input_ids`, `inputs_embeds` or `encoder_outputs`")
            # The encoder reads the embeddings (as in transformers); the rest is the encoder_outputs path.
            encoder_hidden, encoder_extras = _run_encoder(self, want_attentions, want_hidden, attention_mask=attention_mask,
                                                          inputs_embeds=model_inputs["inputs_embeds"])
        if not is_encoder_decoder and encoder_hidden is not None:
            raise GenerationError(f"{type(self).__name__} is decoder-only: it takes no `encoder_outputs`")
        if not is_encoder_decoder and model_inputs.get("decoder_input_ids") is not None:
            raise GenerationError(f"{type(self).__name__} is decoder-only: pass the prompt as `input_ids`")
        device = self.device
        if encoder_hidden is not None:
            encoder_hidden = _check_encoder_hidden(encoder_hidden, self.config, device, self.dtype)
        if input_ids is None and encoder_hidden is None:
            if config.bos_token_id is None:
                raise GenerationError("no `input_ids` were given and `bos_token_id` is not set to start from")
            input_ids = torch.full((1, 1), config.bos_token_id, dtype=torch.long, device=device)
        encoder_vocab, decoder_vocab = _vocab_sizes(self.config)
        if input_ids is not None:
            input_ids = _check_ids("input_ids", input_ids, encoder_vocab if is_encoder_decoder else decoder_vocab,
                                   device)
        batch = input_ids.shape[0] if input_ids is not None else encoder_hidden.shape[0]
        if encoder_hidden is not None and input_ids is not None and encoder_hidden.shape[0] != batch:
            raise InputError(f"encoder_outputs has batch {encoder_hidden.shape[0]}, input_ids {batch}")
        if attention_mask is not None:
            shape = input_ids.shape if input_ids is not None else encoder_hidden.shape[:2]
            attention_mask = _check_mask(attention_mask, tuple(shape), device)
        if model_inputs.get("token_type_ids") is not None:
            _check_token_type_ids(self, model_inputs["token_type_ids"], input_ids, is_encoder_decoder)

        # ---- special tokens ----------------------------------------------------------------------
        eos = token_ids(config.eos_token_id, "eos_token_id", empty_ok=True)
        pad = config.pad_token_id
        if pad is None and eos is not None:
            pad = eos[0]
        for name, value in (("eos_token_id", eos), ("pad_token_id", [pad] if pad is not None else None)):
            if value is not None and any(t >= decoder_vocab for t in value):
                raise GenerationError(f"`{name}` {value} is outside the decoder vocabulary [0, {decoder_vocab})")
        if is_encoder_decoder:
            start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
            if start is None:
                raise GenerationError(
                    "encoder-decoder generation needs `decoder_start_token_id` (or `bos_token_id`): the first "
                    "token fed to the decoder. For bert2bert it is usually the [CLS] id; set "
                    "`model.generation_config.decoder_start_token_id` or pass it to generate()")
            starts = token_ids(start, "decoder_start_token_id")  # one id, or one per batch row
            if isinstance(start, (list, tuple)) or getattr(start, "ndim", 0) > 0:
                if len(starts) != batch:
                    raise GenerationError(f"`decoder_start_token_id` must be one id or one per batch row "
                                          f"({batch}), got {len(starts)}")
            if not all(0 <= t < decoder_vocab for t in starts):
                raise GenerationError(f"`decoder_start_token_id` {start} is outside the vocabulary [0, {decoder_vocab})")
            start_column = torch.tensor(starts * (batch if len(starts) == 1 else 1), dtype=torch.long,
                                        device=device)[:, None]
            prompt = start_column
            decoder_input_ids = model_inputs.get("decoder_input_ids")
            # A decoder prompt's padding mask (left-padded prompts) masks the decoder's self-attention.
            decoder_mask = model_inputs.get("decoder_attention_mask")
            if decoder_mask is not None and decoder_input_ids is None:
                raise GenerationError("`decoder_attention_mask` masks a decoder prompt: pass `decoder_input_ids` too")
            if decoder_input_ids is not None:
                decoder_input_ids = _check_ids("decoder_input_ids", decoder_input_ids, decoder_vocab, device)
                if decoder_input_ids.shape[0] != batch:
                    raise InputError(f"decoder_input_ids has batch {decoder_input_ids.shape[0]}, inputs {batch}")
                if decoder_mask is not None:
                    decoder_mask = _check_mask(decoder_mask, tuple(decoder_input_ids.shape), device,
                                               "decoder_attention_mask")
                prompt = decoder_input_ids
                if (decoder_input_ids[:, :1] != start_column).all():  # transformers prepends the start token then
                    prompt = torch.cat([start_column, prompt], 1)
                    if decoder_mask is not None:
                        decoder_mask = torch.cat([torch.ones_like(decoder_mask[:, :1]), decoder_mask], 1)
        else:
            decoder_mask = None
            prompt = input_ids
            if attention_mask is None and pad is not None and not (eos and pad in eos):
                attention_mask = (prompt != pad).long()  # padding can be told from the ids
            if attention_mask is not None and batch > 1 and not bool(attention_mask[:, -1].all()):
                logger.warning("a decoder-only model got right-padded prompts; pad on the left "
                               "(tokenizer padding_side='left') for correct results")

        # ---- lengths -----------------------------------------------------------------------------
        prompt_len = prompt.shape[1]
        if config.max_new_tokens is not None:
            config.max_length = config.max_new_tokens + prompt_len
        elif max_length_is_default:  # 20 new tokens, within the position table
            config.max_length = config.max_length + prompt_len
            max_positions = getattr(self.config, "max_position_embeddings", None)
            if isinstance(max_positions, int):
                config.max_length = min(config.max_length, max_positions)
        if config.min_new_tokens is not None:
            config.min_length = config.min_new_tokens + prompt_len
        if prompt_len >= config.max_length:
            name = "decoder_input_ids" if is_encoder_decoder else "input_ids"
            raise GenerationError(f"{name} already has {prompt_len} tokens but `max_length` is {config.max_length}: "
                                  "increase `max_length` or set `max_new_tokens`")
        position_limit = _check_positions(self, config, prompt_len, is_encoder_decoder)
        if config.min_length > config.max_length:
            warnings.warn(f"`min_length` ({config.min_length}) is larger than `max_length` ({config.max_length}): "
                          "generation stops at max_length", UserWarning)

        # ---- strategy ----------------------------------------------------------------------------
        beams, returned = config.num_beams, config.num_return_sequences
        if streamer is not None and beams > 1:
            raise GenerationError("`streamer` cannot be used with beam search; set num_beams=1")
        if criteria and beams > 1:
            raise GenerationError("pygen runs custom `stopping_criteria` in greedy decoding and sampling only, "
                                  "not in beam search")
        if config.max_time is not None and beams > 1:
            raise GenerationError("pygen applies `max_time` in greedy decoding and sampling only, not in beam search")
        if generator is not None and not config.do_sample:
            raise GenerationError("`generator`/`seed` only apply to sampling; set do_sample=True")
        expand = max(beams, returned)
        source_ids = input_ids if input_ids is not None and not bool((input_ids < 0).any()) else None
        for name, off in (("encoder_no_repeat_ngram_size", 0), ("encoder_repetition_penalty", 1.0)):
            if getattr(config, name) != off and source_ids is None:
                warnings.warn(f"`{name}` needs `input_ids`; ignoring it", UserWarning)
        prompt_mask = decoder_mask if is_encoder_decoder else attention_mask  # the decoder prompt's padding
        if prompt_mask is not None and bool((prompt_mask != 0).all()):
            prompt_mask = None  # no padding: nothing to mask
        penalty_start = None  # the repetition penalty skips a prompt's left padding, as in transformers
        if prompt_mask is not None:
            penalty_start = (prompt_mask != 0).int().argmax(dim=1).long().repeat_interleave(expand)
        processor = LogitsProcessor(config, vocab_size=decoder_vocab, prompt_len=prompt_len, eos=eos, device=device,
                                    source_ids=source_ids, penalty_start=penalty_start, custom=custom,
                                    prefix_allowed_tokens_fn=prefix_allowed_tokens_fn)

        # ---- encoder and cache -------------------------------------------------------------------
        cross_mask = None
        if is_encoder_decoder:
            if encoder_hidden is None:
                types = model_inputs.get("token_type_ids")
                types = {} if types is None else {"token_type_ids": types}
                if want_attentions or want_hidden:  # the encoder's forward, which returns them
                    encoder_hidden, encoder_extras = _run_encoder(self, want_attentions, want_hidden,
                                                                  input_ids=input_ids, attention_mask=attention_mask,
                                                                  **types)
                else:
                    encoder_hidden = self.gen_encode(input_ids, attention_mask, **types)
            cross_mask = attention_mask
        # Positions past the decoder's table are never fed (the loop stops or raises first).
        capacity = config.max_length if position_limit is None else position_limit[0]
        cache = self.gen_new_cache(encoder_hidden, cross_mask, batch * expand, expand, capacity)
        prompt = prompt.repeat_interleave(expand, dim=0)
        decoder_mask = None if prompt_mask is None else prompt_mask.repeat_interleave(expand, dim=0)
        run = DecodeRun(model=self, cache=cache, prompt=prompt, attention_mask=decoder_mask, processor=processor,
                        max_length=config.max_length,
                        eos=torch.tensor(eos, dtype=torch.long, device=device) if eos else None, pad_token_id=pad,
                        output_scores=bool(config.return_dict_in_generate and config.output_scores),
                        output_logits=bool(config.return_dict_in_generate and config.output_logits),
                        stopping_criteria=criteria, position_limit=position_limit,
                        records=StepRecords(want_attentions, want_hidden) if want_attentions or want_hidden else None,
                        deadline=None if config.max_time is None else started + config.max_time)
        warpers = None
        if config.do_sample:
            keep = (len(eos) + 1 if eos else 2) if beams > 1 else 1
            warpers = dict(temperature=float(config.temperature), top_k=config.top_k, top_p=float(config.top_p),
                           min_p=config.min_p, typical_p=float(config.typical_p),
                           epsilon_cutoff=float(config.epsilon_cutoff), eta_cutoff=float(config.eta_cutoff),
                           min_tokens_to_keep=keep)

        # ---- decode ------------------------------------------------------------------------------
        if beams > 1:
            sequences, seq_scores, scores, logits, beam_indices = beam_search(
                run, num_beams=beams, num_return_sequences=returned, length_penalty=float(config.length_penalty),
                early_stopping=config.early_stopping, do_sample=bool(config.do_sample), warpers=warpers,
                generator=generator)
            if not config.return_dict_in_generate:
                return sequences
            cls = GenerateBeamEncoderDecoderOutput if is_encoder_decoder else GenerateBeamDecoderOnlyOutput
            return cls(sequences=sequences, sequences_scores=seq_scores if config.output_scores else None,
                       scores=tuple(scores) or None, logits=tuple(logits) or None, beam_indices=beam_indices,
                       **_step_extras(run, is_encoder_decoder), **encoder_extras)
        if streamer is not None:
            streamer.put(prompt.cpu())
        sequences, scores, logits = greedy_or_sample(run, do_sample=bool(config.do_sample), warpers=warpers,
                                                     generator=generator, streamer=streamer)
        if streamer is not None:
            streamer.end()
        if not config.return_dict_in_generate:
            return sequences
        cls = GenerateEncoderDecoderOutput if is_encoder_decoder else GenerateDecoderOnlyOutput
        return cls(sequences=sequences, scores=tuple(scores) or None, logits=tuple(logits) or None,
                   **_step_extras(run, is_encoder_decoder), **encoder_extras)

    def _resolve_generation_config(self, generation_config: Optional[GenerationConfig],
                                   kwargs: dict[str, Any]) -> tuple[GenerationConfig, bool]:
        """Merge kwargs > ``generation_config`` > ``self.generation_config`` > global defaults; also
        say whether ``max_length`` was left unset everywhere."""
        if generation_config is not None and not isinstance(generation_config, GenerationConfig):
            if type(generation_config).__name__ != "GenerationConfig" or not callable(
                    getattr(generation_config, "to_dict", None)):
                raise GenerationError(f"`generation_config` must be a GenerationConfig, got "
                                      f"{type(generation_config).__name__}")
            generation_config = GenerationConfig(**generation_config.to_dict())  # transformers' own class
        model_config = getattr(self, "generation_config", None) or GenerationConfig()
        # An explicit None unsets a field, as in transformers (forced_eos_token_id=None turns the
        # model's forced EOS off); fields no generation runs without keep their resolved value.
        unset = [k for k, v in kwargs.items() if v is None and k in FIELDS]
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        max_length_is_default = (
            "max_length" not in kwargs and (generation_config is None or generation_config.max_length is None)
            and model_config.max_length is None)
        config = generation_config.copy() if generation_config is not None else GenerationConfig()
        config.update(defaults_only=True, allow_custom_entries=True, **model_config.to_dict())
        config.update(defaults_only=True, **GLOBAL_DEFAULTS)
        # transformers' options pygen does not implement are not typos: accepted when off, named otherwise
        for name in [k for k in kwargs if k in UNSUPPORTED]:
            if kwargs[name] != UNSUPPORTED[name]:
                raise GenerationError(f"pygen does not implement `{name}` (got {kwargs[name]!r})")
            del kwargs[name]
        unknown = config.update(**kwargs)
        for name in unset:
            if name not in GLOBAL_DEFAULTS:
                setattr(config, name, None)
            elif name in _NONE_MEANS:
                setattr(config, name, _NONE_MEANS[name])
        if unknown:
            raise GenerationError(f"generate() got arguments it does not use: {sorted(unknown)} (note: typos in "
                                  "generation arguments also show up here)")
        for name, off in UNSUPPORTED.items():
            if getattr(config, name, off) not in (off, None):
                raise GenerationError(f"pygen does not implement `{name}` (got {getattr(config, name)!r})")
        config.validate()  # value ranges too: the values this call will run with
        return config, max_length_is_default


def _run_encoder(model: Any, attentions: bool, hidden_states: bool, **inputs: Any) -> tuple[Tensor, dict[str, Any]]:
    """The encoder's forward on ``inputs``: its last hidden state and, as asked, its attentions /
    hidden states for the returned dict."""
    out = model.get_encoder()(**inputs, output_attentions=attentions, output_hidden_states=hidden_states,
                              return_dict=True)
    return out.last_hidden_state, _encoder_extras(out, attentions, hidden_states)


def _encoder_extras(encoder_outputs: Any, attentions: bool, hidden_states: bool) -> dict[str, Any]:
    """The encoder's attentions / hidden states for the returned dict (transformers takes them from
    ``encoder_outputs``, given or computed; a bare tensor or tuple has none)."""
    def field(name: str) -> Any:
        if isinstance(encoder_outputs, dict):
            return encoder_outputs.get(name)
        return getattr(encoder_outputs, name, None)

    extras = {}
    if attentions:
        extras["encoder_attentions"] = field("attentions")
    if hidden_states:
        extras["encoder_hidden_states"] = field("hidden_states")
    return extras


def _step_extras(run: DecodeRun, is_encoder_decoder: bool) -> dict[str, Any]:
    """The decoder's per-step attentions / hidden states for the returned dict, under transformers' names."""
    records = run.records
    if records is None:
        return {}
    extras = {}
    if records.output_attentions:
        if is_encoder_decoder:
            extras["decoder_attentions"] = tuple(records.attentions)
            extras["cross_attentions"] = tuple(records.cross_attentions)
        else:
            extras["attentions"] = tuple(records.attentions)
    if records.output_hidden_states:
        extras["decoder_hidden_states" if is_encoder_decoder else "hidden_states"] = tuple(records.hidden_states)
    return extras


def _vocab_sizes(config) -> tuple[int, int]:
    """(encoder input vocabulary, decoder output vocabulary) of a model config."""
    encoder = getattr(config, "encoder", None)
    decoder = getattr(config, "decoder", None)
    return ((encoder if encoder is not None else config).vocab_size,
            (decoder if decoder is not None else config).vocab_size)


def _check_token_type_ids(model: torch.nn.Module, token_types: Any, input_ids: Optional[Tensor],
                          is_encoder_decoder: bool) -> None:
    """``token_type_ids`` go to the encoder (its embeddings check the values) as in transformers; a
    decoder-only prompt takes only zeros, the segment of every generated token without them."""
    owner = model.get_encoder() if is_encoder_decoder else model
    if not any(name.endswith("token_type_embeddings") for name, _ in owner.named_modules()):
        where = "encoder" if is_encoder_decoder else "model"
        raise GenerationError(f"{type(model).__name__} takes no `token_type_ids`: its {where} has no token type "
                              "embeddings")
    if not isinstance(token_types, Tensor) or input_ids is None or token_types.shape != input_ids.shape:
        got = tuple(token_types.shape) if isinstance(token_types, Tensor) else type(token_types).__name__
        want = list(input_ids.shape) if input_ids is not None else "input_ids'"
        raise InputError(f"token_type_ids must have the shape {want} of input_ids, got {got}")
    if not is_encoder_decoder and bool((token_types != 0).any()):
        raise GenerationError("token_type_ids of a decoder-only prompt must be 0 (pygen does not carry other "
                              "segment ids into generated tokens)")


def _encoder_hidden_states(encoder_outputs: Any) -> Optional[Tensor]:
    """``encoder_outputs`` as transformers accepts them: an output object, a dict, a tuple, or a tensor."""
    if encoder_outputs is None:
        return None
    if isinstance(encoder_outputs, Tensor):
        hidden = encoder_outputs
    elif isinstance(encoder_outputs, dict) and "last_hidden_state" in encoder_outputs:
        hidden = encoder_outputs["last_hidden_state"]
    elif getattr(encoder_outputs, "last_hidden_state", None) is not None:
        hidden = encoder_outputs.last_hidden_state
    elif isinstance(encoder_outputs, (tuple, list)) and encoder_outputs:
        hidden = encoder_outputs[0]
    else:
        raise InputError(f"encoder_outputs must hold the encoder's last hidden state, got "
                         f"{type(encoder_outputs).__name__}")
    if not isinstance(hidden, Tensor) or hidden.dim() != 3 or hidden.shape[0] == 0:
        raise InputError("encoder_outputs' last hidden state must be a [batch >= 1, len, hidden] tensor")
    return hidden


def _check_ids(name: str, ids: Any, vocab_size: int, device: torch.device) -> Tensor:
    if not isinstance(ids, Tensor):
        raise InputError(f"`{name}` must be a torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise InputError(f"`{name}` must hold integer token ids, got dtype {ids.dtype}")
    if ids.dim() != 2:
        raise InputError(f"`{name}` must be [batch, length], got shape {list(ids.shape)}")
    if ids.shape[0] == 0:
        raise InputError(f"`{name}` is an empty batch")
    if ids.shape[1] == 0:
        raise InputError(f"`{name}` has no tokens")
    _check_has_data(name, ids, device)
    ids = ids.to(device=device, dtype=torch.long)
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        raise InputError(f"`{name}` holds ids outside the vocabulary [0, {vocab_size}): "
                         f"{low if low < 0 else high}")
    return ids


def _check_mask(mask: Any, shape: tuple[int, int], device: torch.device, name: str = "attention_mask") -> Tensor:
    if not isinstance(mask, Tensor) or tuple(mask.shape) != shape:
        got = list(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise InputError(f"`{name}` must be a tensor of shape {list(shape)} (1 = token, 0 = padding), got {got}")
    if mask.dtype.is_complex:
        raise InputError(f"`{name}` must be bool, integer or float (1 = token, 0 = padding), got dtype {mask.dtype}")
    _check_has_data(name, mask, device)
    return mask.to(device)


def _check_has_data(name: str, value: Tensor, device: torch.device) -> None:
    """Inputs on another real device are copied to the model's; a ``meta`` tensor has nothing to copy."""
    if value.device != device and value.device.type == "meta":
        raise InputError(f"`{name}` is on device meta (a meta tensor holds no data) but the model is on {device}")


def _check_encoder_hidden(hidden: Tensor, model_config: Any, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``encoder_outputs``' last hidden state: floating, as wide as the encoder's states, on the model's
    device (copied there from another real device, like ``input_ids``) and dtype."""
    encoder_config = getattr(model_config, "encoder", None) or model_config
    width = getattr(encoder_config, "hidden_size", None)
    if not hidden.is_floating_point():
        raise InputError(f"`encoder_outputs` must hold floating hidden states, got dtype {hidden.dtype}")
    if isinstance(width, int) and hidden.shape[-1] != width:
        raise InputError(f"`encoder_outputs`' last hidden state must be [batch, length, {width}] (the encoder's "
                         f"hidden size), got shape {list(hidden.shape)}")
    if hidden.shape[1] == 0:
        raise InputError(f"`encoder_outputs`' last hidden state has no positions (shape {list(hidden.shape)})")
    _check_has_data("encoder_outputs", hidden, device)
    if hidden.dtype != dtype and not torch.is_autocast_enabled(device.type):
        raise InputError(f"`encoder_outputs` has dtype {hidden.dtype} but the model's weights are {dtype}")
    return hidden.to(device)


def _check_positions(model: Any, config: GenerationConfig, prompt_len: int,
                     is_encoder_decoder: bool) -> Optional[tuple[int, str]]:
    """The prompt must fit the decoder's position table. ``max_length`` may not: generating up to
    it needs ``max_length - 1`` positions (the final token is never fed back), and, as in
    transformers, that only fails if a sequence still runs when the table ends. Returns (positions,
    error message) for the loop to check then, or None when ``max_length`` fits."""
    if hasattr(model, "gen_max_positions"):
        limit = model.gen_max_positions()
    else:
        decoder_config = getattr(model.config, "decoder", None) or model.config
        limit = getattr(decoder_config, "max_position_embeddings", None)
    if not isinstance(limit, int) or isinstance(limit, bool) or config.max_length - 1 <= limit:
        return None
    name = "decoder_input_ids" if is_encoder_decoder else "input_ids"
    if prompt_len > limit:
        raise InputError(f"`{name}` has {prompt_len} tokens, more than the model's max_position_embeddings "
                         f"({limit})")
    how = (f"`max_new_tokens` ({config.max_new_tokens}) + {prompt_len} tokens of {name}"
           if config.max_new_tokens is not None else f"`max_length` ({config.max_length})")
    return limit, (f"{how} needs {config.max_length - 1} positions, more than the model's max_position_embeddings "
                   f"({limit}), and a sequence was still running when they ran out: lower `max_new_tokens` / "
                   "`max_length`")

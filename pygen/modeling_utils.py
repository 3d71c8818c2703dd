"""``PreTrainedModel``: the base of every pygen model class.

Loading follows transformers: weights are matched by name (with or without the
``base_model_prefix``), missing and unexpected keys are reported as warnings, a shape
mismatch is an error, and tied weights are re-tied after loading.
"""
from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .checkpoint import load_state_dict, save_state_dict
from .configuration_utils import CONFIG_NAME, PretrainedConfig
from .errors import CheckpointError, ConfigError, InputError, PygenError
from .generation.config import GENERATION_CONFIG_NAME, GenerationConfig
from .hub import resolve_pretrained

logger = logging.getLogger("pygen")

_DTYPES = {"float32": torch.float32, "float": torch.float32, "float16": torch.float16, "half": torch.float16,
           "bfloat16": torch.bfloat16, "float64": torch.float64}


def parse_dtype(dtype: Any, config: PretrainedConfig | None = None,
                state: dict[str, torch.Tensor] | None = None) -> torch.dtype | None:
    """``None``/``"auto"``/str/torch.dtype -> torch.dtype, or None for "keep float32".

    ``"auto"`` is transformers': the config's ``dtype``, else that of the checkpoint's first
    floating-point tensor (``state``), else float32."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype == "auto":
        dtype = getattr(config, "dtype", None)
        if dtype is None:
            dtype = next((t.dtype for t in (state or {}).values() if t.is_floating_point()), None)
        if dtype is None:
            return None
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ConfigError(f"unsupported dtype {dtype}; use one of {sorted(_DTYPES)}")
        return dtype
    name = str(dtype).replace("torch.", "")
    if name not in _DTYPES:
        raise ConfigError(f"unsupported dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    return _DTYPES[name]


class PreTrainedModel(nn.Module):
    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    # Name of the base model attribute (``model`` in BartForConditionalGeneration), used to
    # load a base checkpoint into a head model and the reverse.
    base_model_prefix: ClassVar[str] = ""
    main_input_name: ClassVar[str] = "input_ids"  # the name of the first forward input (transformers')
    # Parameter name -> the parameter it is tied to (when config.tie_word_embeddings).
    tied_weights: ClassVar[dict[str, str]] = {}
    # Checkpoint keys that are expected to be absent from the model and need no warning.
    ignore_unexpected: ClassVar[tuple[str, ...]] = ()
    ignore_missing: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config
        self.generation_config = GenerationConfig.from_model_config(config)

    # ---- weights ------------------------------------------------------------------------
    def init_weights(self) -> None:
        """Initialise every submodule (as transformers' ``_init_weights``) and tie weights."""
        self.apply(self._init_weights)
        self.tie_weights()

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", None) or getattr(self.config, "init_std", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            if module.weight is not None:
                nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def tie_weights(self) -> None:
        if not getattr(self.config, "tie_word_embeddings", True):
            return
        for target, source in self.tied_weights.items():
            src = self.get_parameter(source)
            owner_name, _, attr = target.rpartition(".")
            owner = self.get_submodule(owner_name) if owner_name else self
            setattr(owner, attr, src)

    def get_input_embeddings(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} has no input embeddings")

    def get_output_embeddings(self) -> nn.Module | None:
        return None

    # ---- vocabulary size -------------------------------------------------------------------
    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> nn.Module:
        """As transformers: the input embeddings, the output embeddings when not tied to them and
        their bias get ``new_num_tokens`` rows (rounded up to ``pad_to_multiple_of``); existing rows
        are kept, added ones are drawn around the old rows' mean (``mean_resizing``, transformers'
        rule) or as at init. Tied weights stay tied; ``config.vocab_size`` follows. Returns the
        input embeddings."""
        embeddings = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return embeddings
        size = embeddings.weight.shape[0] if new_num_tokens is None else new_num_tokens
        for name, value in (("new_num_tokens", size), ("pad_to_multiple_of", pad_to_multiple_of or 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"resize_token_embeddings: {name} must be a positive int, got {value!r}")
        if pad_to_multiple_of:
            size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
        std = getattr(self.config, "initializer_range", None) or getattr(self.config, "init_std", 0.02)
        with torch.no_grad():
            self._replace_parameter(embeddings.weight, _resized_rows(embeddings.weight, size, mean_resizing, std))
            # Every slot of the input embeddings (BART's encoder and decoder copies) becomes this module.
            owner = self if "set_input_embeddings" in type(self).__dict__ else self.base_model
            if hasattr(owner, "set_input_embeddings"):
                owner.set_input_embeddings(embeddings)
            self.tie_weights()
            output = self.get_output_embeddings()
            if output is not None and output.weight.shape[0] != size:
                self._replace_parameter(output.weight, _resized_rows(output.weight, size, mean_resizing, std))
            if output is not None and output.bias is not None and output.bias.shape[0] != size:
                self._replace_parameter(output.bias, _resized_bias(output.bias, size, mean_resizing))
            self._resize_token_buffers(size)
        for module in self.modules():
            if isinstance(module, nn.Embedding) and module.weight is embeddings.weight:
                module.num_embeddings = size
            elif output is not None and module is output:
                module.out_features = size
        self.config.vocab_size = size
        return embeddings

    def _replace_parameter(self, old: nn.Parameter, new: torch.Tensor) -> None:
        """Every module slot holding ``old`` (one weight, tied or not) gets ``new`` instead."""
        replacement = nn.Parameter(new, requires_grad=old.requires_grad)
        for module in self.modules():
            for name, param in module._parameters.items():
                if param is old:
                    module._parameters[name] = replacement

    def _resize_token_buffers(self, size: int) -> None:
        """Per-token buffers beyond the embeddings (BART's final_logits_bias); none by default."""

    @classmethod
    def can_generate(cls) -> bool:
        """Whether ``generate()`` works for this class (it implements the generation protocol)."""
        return hasattr(cls, "gen_step") and hasattr(cls, "generate")

    @property
    def name_or_path(self) -> str:
        """Where ``from_pretrained`` loaded this model from ("" for one built in code)."""
        return self.config.name_or_path

    @property
    def base_model(self) -> nn.Module:
        """The bare model under ``base_model_prefix`` (a head model's body), else the model itself."""
        return getattr(self, self.base_model_prefix, self) if self.base_model_prefix else self

    def get_encoder(self) -> nn.Module:
        """As transformers: the ``encoder`` submodule, else the base model's encoder, else the model itself."""
        if hasattr(self, "encoder"):
            return self.encoder
        base = self.base_model
        if base is not self and isinstance(base, PreTrainedModel):
            encoder = base.get_encoder()
            if encoder is not base:
                return encoder
        return self

    def get_decoder(self) -> nn.Module:
        """As transformers: the ``decoder`` submodule, else what the base model calls its decoder
        (itself, for a decoder-only body), else the model itself."""
        if hasattr(self, "decoder"):
            return self.decoder
        base = self.base_model
        return base.get_decoder() if base is not self and isinstance(base, PreTrainedModel) else self

    # ---- properties ---------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p for p in self.parameters() if p.is_floating_point()).dtype

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameters (each shared one once), as transformers counts them."""
        skip = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)} if exclude_embeddings else set()
        params = {id(p): p for p in self.parameters()
                  if (p.requires_grad or not only_trainable) and id(p) not in skip}
        return sum(p.numel() for p in params.values())

    # ---- loading ------------------------------------------------------------------------
    @classmethod
    def remap_state_dict(cls, state: dict[str, torch.Tensor], config: PretrainedConfig) -> dict[str, torch.Tensor]:
        """Rename checkpoint keys written by other layouts; subclasses override."""
        return state

    def _match_prefix(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add or strip ``base_model_prefix`` so checkpoint keys line up with ours."""
        prefix = self.base_model_prefix
        if not prefix:
            return state
        own = set(self.state_dict())
        has_prefix_model = any(k.startswith(prefix + ".") for k in own)
        has_prefix_ckpt = any(k.startswith(prefix + ".") for k in state)
        if has_prefix_model and not has_prefix_ckpt:
            return {f"{prefix}.{k}" if f"{prefix}.{k}" in own else k: v for k, v in state.items()}
        if has_prefix_ckpt and not has_prefix_model:
            return {k[len(prefix) + 1:] if k.startswith(prefix + ".") else k: v for k, v in state.items()}
        return state

    def load_checkpoint_state(self, state: dict[str, torch.Tensor], *, ignore_mismatched_sizes: bool = False,
                              source: str = "the checkpoint") -> dict[str, Any]:
        """Copy ``state`` into this model; return transformers' loading info: the missing and
        unexpected keys it reports (the ``ignore_missing`` / ``ignore_unexpected`` ones left out),
        the (key, checkpoint shape, model shape) of tensors skipped by ``ignore_mismatched_sizes``."""
        bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(f"{source} holds entries that are not named tensors: {bad[:5]!r}")
        state = self._match_prefix(self.remap_state_dict(dict(state), self.config))
        own = self.state_dict()
        tied = dict(self.tied_weights) if getattr(self.config, "tie_word_embeddings", True) else {}
        mismatched = [(key, value.shape, own[key].shape) for key, value in state.items()
                      if key in own and own[key].shape != value.shape]
        if mismatched and not ignore_mismatched_sizes:
            raise CheckpointError(
                f"size mismatch loading {source} into {type(self).__name__}:\n  "
                + "\n  ".join(f"{key}: checkpoint {tuple(old)} vs model {tuple(new)}" for key, old, new in mismatched)
                + "\n(pass ignore_mismatched_sizes=True to re-initialise these weights)"
            )
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        # Tied names share one tensor, so either name in the checkpoint fills both (as transformers).
        loaded = set(usable)
        for tied_name, tied_to in tied.items():
            if tied_name in loaded or tied_to in loaded:
                loaded.update((tied_name, tied_to))
        missing = [k for k in own if k not in loaded]
        unexpected = [k for k in state if k not in own]
        with torch.no_grad():
            for key, value in usable.items():
                own[key].copy_(value)
        self.tie_weights()
        report_missing = [k for k in missing if not any(k.startswith(p) or k.endswith(p) for p in self.ignore_missing)]
        report_unexpected = [k for k in unexpected if not any(p in k for p in self.ignore_unexpected)]
        if report_unexpected:
            logger.warning("Some weights of %s were not used when initializing %s: %s",
                           source, type(self).__name__, report_unexpected)
        if report_missing:
            logger.warning("Some weights of %s were not initialized from %s and are newly initialized: %s",
                           type(self).__name__, source, report_missing)
        return {"missing_keys": set(report_missing), "unexpected_keys": set(report_unexpected),
                "mismatched_keys": set(mismatched), "error_msgs": []}

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *args: Any, config: PretrainedConfig | None = None,
                        dtype: Any = None, torch_dtype: Any = None, device: Any = None,
                        ignore_mismatched_sizes: bool = False, output_loading_info: bool = False,
                        seed: int | None = None, use_safetensors: bool | None = None, **overrides: Any):
        """Load a checkpoint directory, or a hub id found in the local HF cache (never downloads).

        ``overrides`` set config fields (``BertGenerationEncoder.from_pretrained(path, bos_token_id=101)``);
        unknown names raise :class:`ConfigError`. ``seed`` seeds the init of weights the checkpoint lacks.
        ``dtype`` (or its older name ``torch_dtype``): unset, None or ``"auto"`` load the dtype the
        checkpoint was saved in, as transformers 5 does.
        """
        if args:
            raise TypeError(f"{cls.__name__}.from_pretrained takes one positional argument (the path)")
        directory = resolve_pretrained(name_or_path, overrides)
        overrides.pop("attn_implementation", None)  # pygen always runs its own kernels
        # Arguments of the model's constructor (BertModel's add_pooling_layer) go to it, as in
        # transformers; the other overrides are config fields.
        init_names = set(inspect.signature(cls.__init__).parameters) - {"self", "config", "args", "kwargs"}
        init_kwargs = {name: overrides.pop(name) for name in list(overrides) if name in init_names}
        device = _device_from_map(overrides.pop("device_map", None), device)
        if config is None:
            config = cls.config_class.from_pretrained(directory, **overrides)
        elif overrides:
            config.update(overrides)
        config.name_or_path = str(name_or_path)
        if dtype is None or (isinstance(dtype, str) and dtype == "auto"):
            dtype = "auto" if torch_dtype is None else torch_dtype
        target_dtype = parse_dtype(dtype, config)  # "auto" waits for the weights; other values fail early
        try:
            model = cls._from_config_for_loading(config, **init_kwargs)
        except PygenError:
            raise
        except (ArithmeticError, AssertionError, AttributeError, IndexError, KeyError, TypeError, ValueError,
                RuntimeError, MemoryError) as exc:
            # A config value the config class did not check (zero heads, negative sizes, a size too
            # large to allocate...): report it as the config's fault, keeping the cause.
            raise ConfigError(f"cannot build {cls.__name__} from the config of {directory}: "
                              f"{type(exc).__name__}: {exc}") from exc
        state = load_state_dict(directory, use_safetensors)
        if isinstance(dtype, str) and dtype == "auto":
            target_dtype = parse_dtype(dtype, config, state)
        if seed is not None:
            torch.manual_seed(seed)
        model.init_weights()
        loading_info = model.load_checkpoint_state(
            state, ignore_mismatched_sizes=ignore_mismatched_sizes, source=str(directory))
        if (directory / GENERATION_CONFIG_NAME).is_file():
            try:
                model.generation_config = GenerationConfig.from_pretrained(directory)
            except PygenError:
                raise
            except (TypeError, ValueError, AttributeError, RecursionError) as exc:
                raise ConfigError(f"invalid {directory / GENERATION_CONFIG_NAME}: {type(exc).__name__}: {exc}") from exc
        if target_dtype is not None:
            model.to(target_dtype)
        if device is not None:
            try:
                model.to(device)
            except (RuntimeError, AssertionError, TypeError, ValueError) as exc:
                raise InputError(f"cannot move the model to device={device!r}: {exc}") from exc
        model.eval()
        if output_loading_info:
            return model, loading_info
        return model

    @classmethod
    def _from_config_for_loading(cls, config: PretrainedConfig, **init_kwargs: Any):
        return cls(config, **init_kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig):
        return cls(config)

    def save_pretrained(self, save_directory: str | os.PathLike, max_shard_size: int | str = "50GB",
                        **_: Any) -> None:
        """Write ``config.json``, ``generation_config.json`` and ``model.safetensors`` (or shards of
        at most ``max_shard_size``, e.g. "2GB", with their index, as transformers)."""
        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        self.config.architectures = [type(self).__name__]
        self.config.dtype = str(self.dtype).removeprefix("torch.")  # what dtype="auto" loads back
        self.config.save_pretrained(path)
        self.generation_config.save_pretrained(path)
        state = self.state_dict()
        if getattr(self.config, "tie_word_embeddings", True):
            for target in self.tied_weights:
                state.pop(target, None)
        save_state_dict(state, path, max_shard_size)


def _resized_rows(weight: torch.Tensor, size: int, mean_resizing: bool, std: float) -> torch.Tensor:
    """``weight`` ``[rows, dim]`` cut or grown to ``size`` rows. Added rows: transformers' mean
    resizing (a normal around the rows' mean with 1e-9 x their covariance, or the mean itself when
    that is not positive definite), else the init's normal(0, std)."""
    old, dim = weight.shape
    added = size - old
    if added <= 0:
        return weight.detach()[:size].clone()
    if mean_resizing:
        rows = weight.detach().float()
        mean = rows.mean(dim=0)
        centered = rows - mean
        covariance = 1e-9 * (centered.T @ centered) / old
        if bool(torch.distributions.constraints.positive_definite.check(covariance)):
            new = torch.distributions.MultivariateNormal(mean, covariance_matrix=covariance).sample((added,))
        else:
            new = mean[None, :].repeat(added, 1)
    else:
        new = torch.randn(added, dim, device=weight.device) * std
    return torch.cat([weight.detach(), new.to(weight.dtype)])


def _resized_bias(bias: torch.Tensor, size: int, mean_resizing: bool) -> torch.Tensor:
    """An output bias cut or grown to ``size``: added entries at the old mean (transformers draws
    them with 1e-9 x the std around it), or zeros as at init."""
    added = size - bias.shape[0]
    if added <= 0:
        return bias.detach()[:size].clone()
    fill = bias.detach().float().mean() if mean_resizing else 0.0
    return torch.cat([bias.detach(), torch.full((added,), float(fill), dtype=bias.dtype, device=bias.device)])


def _device_from_map(device_map: Any, device: Any) -> Any:
    """transformers' ``device_map`` as a single device: pygen keeps a model on one device."""
    if device_map is None:
        return device
    if device is not None:
        raise InputError("from_pretrained: pass device= or device_map=, not both")
    if device_map == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device_map, (str, int, torch.device)):
        return device_map
    raise InputError(f"from_pretrained: device_map must name one device (\"cpu\", \"cuda:0\", 0, \"auto\"); "
                     f"pygen does not split a model across devices, got {device_map!r:.200}")

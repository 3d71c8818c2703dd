"""Fuzzing pygen's checkpoint and config loaders.

Valid tiny checkpoint directories (one per model family, in each weight format pygen reads) are
mutated -- raw bytes, the safetensors header length, the header JSON (dtypes, shapes, offsets),
config.json / generation_config.json / the shard index as JSON -- and loaded with
``AutoConfig.from_pretrained``, ``checkpoint.load_state_dict`` and the family's
``from_pretrained``. The only acceptable outcomes are success or a pygen error
(``pygen.errors.PygenError``); any other exception is a finding, and a crash (signal) too.

Engines (all share the mutators below, driven by a "chooser" of random decisions):

* ``--engine atheris``: coverage-guided libFuzzer (``pip install atheris``); a crash or an
  unexpected exception stops it and libFuzzer writes the input to ``crash-*``. Long runs::

      python tests/fuzz/fuzz_loader.py --engine atheris -- -atheris_runs=20000 -rss_limit_mb=4096

* ``--engine random``: seeded random mutation, for CI and machines without atheris::

      python tests/fuzz/fuzz_loader.py --engine random --iterations 5000 --seed 1

  Exits 0 when clean, 1 on an unexpected exception (the input is saved under ``--findings``);
  a crash shows as death by a signal. Replay a saved input with ``--replay DIR``.

``tests/fuzz/test_fuzz_loader.py`` runs a bounded version of both the random engine (in a
subprocess, for the crash check) and a hypothesis-driven one, as part of the test suite.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

if __name__ == "__main__" and "--engine" in sys.argv and "atheris" in sys.argv:
    import atheris  # instrument pygen's own loaders for coverage feedback

    with atheris.instrument_imports(include=["pygen"]):
        import pygen.checkpoint  # noqa: F401
        import pygen.configuration_utils  # noqa: F401
        import pygen.modeling_utils  # noqa: F401

import torch

from pygen.checkpoint import load_state_dict
from pygen.configuration_utils import AutoConfig
from pygen.errors import PygenError
from pygen.models.bart import BartConfig, BartForConditionalGeneration
from pygen.models.bert import BertConfig
from pygen.models.bert_generation import BertGenerationConfig, BertGenerationDecoder
from pygen.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel
from pygen.models.perceiver import PerceiverConfig, PerceiverForMaskedLM

# ==================================================================================================
# Choosers: the source of every random decision of a mutation.
# ==================================================================================================


class Chooser:
    """Random decisions; subclasses draw them from random, atheris or hypothesis."""

    def int(self, low: int, high: int) -> int:  # inclusive bounds
        raise NotImplementedError

    def bytes(self, n: int) -> bytes:
        raise NotImplementedError

    def pick(self, items):
        items = list(items)
        return items[self.int(0, len(items) - 1)]

    def chance(self, percent: int) -> bool:
        return self.int(0, 99) < percent


class RandomChooser(Chooser):
    def __init__(self, rng: random.Random):
        self.rng = rng

    def int(self, low, high):
        return self.rng.randint(low, high)

    def bytes(self, n):
        return self.rng.randbytes(n)


class AtherisChooser(Chooser):
    def __init__(self, fdp):
        self.fdp = fdp

    def int(self, low, high):
        return self.fdp.ConsumeIntInRange(low, high)

    def bytes(self, n):
        return self.fdp.ConsumeBytes(n)


class HypothesisChooser(Chooser):
    def __init__(self, data):
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def int(self, low, high):
        return self.data.draw(self.st.integers(low, high))

    def bytes(self, n):
        return self.data.draw(self.st.binary(min_size=n, max_size=n))


# ==================================================================================================
# Seeds: valid tiny checkpoints.
# ==================================================================================================

FAMILIES: dict[str, type] = {
    "bart": BartForConditionalGeneration,
    "bert2bert-sharded": EncoderDecoderModel,
    "bert_generation-bin": BertGenerationDecoder,
    "perceiver": PerceiverForMaskedLM,
}


def _bert(**kw) -> BertConfig:
    return BertConfig(vocab_size=13, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                      max_position_embeddings=12, **kw)


def _build(family: str) -> torch.nn.Module:
    if family == "bart":
        return BartForConditionalGeneration(BartConfig(
            vocab_size=13, d_model=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=8, decoder_ffn_dim=8, max_position_embeddings=12))
    if family == "bert2bert-sharded":
        return EncoderDecoderModel(EncoderDecoderConfig.from_encoder_decoder_configs(
            _bert(), _bert(), decoder_start_token_id=1, pad_token_id=0))
    if family == "bert_generation-bin":
        return BertGenerationDecoder(BertGenerationConfig(
            vocab_size=13, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
            max_position_embeddings=12, is_decoder=True))
    if family == "perceiver":
        return PerceiverForMaskedLM(PerceiverConfig(
            num_latents=2, d_latents=8, d_model=8, num_blocks=1, num_self_attends_per_block=1,
            num_self_attention_heads=1, num_cross_attention_heads=1, max_position_embeddings=6))
    raise KeyError(family)


def make_seeds(root: Path, seed: int = 0) -> dict[str, Path]:
    """Write one valid checkpoint directory per family under ``root``; return them by family."""
    torch.manual_seed(seed)
    seeds = {}
    for family in FAMILIES:
        directory = root / family
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _build(family)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p))
        model.save_pretrained(directory)
        if family.endswith("-sharded"):
            _shard(directory)
        elif family.endswith("-bin"):
            state = load_state_dict(directory)
            (directory / "model.safetensors").unlink()
            torch.save(state, directory / "pytorch_model.bin")
        seeds[family] = directory
    return seeds


def _shard(directory: Path) -> None:
    from safetensors.torch import save_file

    state = load_state_dict(directory)
    (directory / "model.safetensors").unlink()
    keys = sorted(state)
    weight_map = {}
    for i, part in enumerate((keys[::2], keys[1::2])):
        name = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, str(directory / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


# ==================================================================================================
# Mutators
# ==================================================================================================

INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 8, 15, 16, 17, 63, 64, 255, 256, 4097, 2**31 - 1, 2**31, 2**32, 2**53 + 1,
                    2**63 - 1, 2**63, 2**64, -(2**63), 10**30]
INTERESTING_VALUES: list[Any] = INTERESTING_INTS + [
    0.0, -0.0, 0.5, 1.5, -1.5, 1e-30, 1e308, math.inf, -math.inf, math.nan, True, False, None, "", "a", "16",
    "float32", "float16", "int8", "F32", "F16", "BF16", "I64", "BOOL", "F8_E4M3", "U8", "F7", "gelu", "relu", "bart",
    "bert", "bert-generation", "perceiver", "encoder-decoder", "kv", "q", [], [0], [1, 2], [-1], [2**62, 2**62],
    [0, 0], [8, 0], {}, {"model_type": "bert"}, {"a": 1}, [[1]], {"0": "a"}, {"x": "y"},
]
INTERESTING_KEYS = ["self", "__class__", "__dict__", "to_dict", "_validate", "validate", "update", "model_type",
                    "id2label", "label2id", "num_labels", "torch_dtype", "dtype", "encoder", "decoder",
                    "attribute_map", "defaults", "vocab_size", "hidden_size", "use_return_dict",
                    "transformers_version", "__metadata__", "weight_map", "dtype", "shape", "data_offsets",
                    "is_encoder_decoder", "tie_word_embeddings", "eos_token_id", "num_beams", "max_length"]
SHARD_NAMES = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "", ".", "..", "../x",
               "/etc/hostname", "config.json", "model.safetensors.index.json", "missing.safetensors",
               "sub/dir.safetensors", "a\x00b"]
INTERESTING_BYTES = [0x00, 0xFF, 0x7F, 0x80, ord("{"), ord("}"), ord("["), ord("]"), ord('"'), ord(","), ord(":"),
                     ord("0"), ord("9"), ord("-"), ord("e"), ord("\\")]


def mutate_bytes(data: bytes, ch: Chooser) -> bytes:
    """One to a few generic byte-level edits."""
    buf = bytearray(data)
    for _ in range(ch.int(1, 4)):
        op = ch.int(0, 7)
        pos = ch.int(0, max(len(buf) - 1, 0))
        if op == 0 and buf:  # flip a bit
            buf[pos] ^= 1 << ch.int(0, 7)
        elif op == 1 and buf:  # interesting byte
            buf[pos] = ch.pick(INTERESTING_BYTES)
        elif op == 2:  # insert random bytes
            buf[pos:pos] = ch.bytes(ch.int(1, 16))
        elif op == 3 and buf:  # delete a range
            del buf[pos:pos + ch.int(1, 64)]
        elif op == 4 and buf:  # duplicate a range
            buf[pos:pos] = buf[pos:pos + ch.int(1, 64)]
        elif op == 5:  # truncate
            del buf[pos:]
        elif op == 6:  # append
            buf += ch.bytes(ch.int(1, 32))
        elif op == 7 and len(buf) >= 8:  # overwrite 8 bytes with an interesting little-endian integer
            value = ch.pick(INTERESTING_INTS) % 2**64
            buf[pos:pos + 8] = value.to_bytes(8, "little")
    return bytes(buf)


def _containers(obj: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every dict/list inside ``obj`` with its path."""
    found = []
    if isinstance(obj, (dict, list)):
        found.append((path, obj))
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for key, value in items:
            found.extend(_containers(value, path + (key,)))
    return found


def mutate_json(obj: Any, ch: Chooser, values: Optional[list] = None) -> Any:
    """One to a few structure-aware edits of parsed JSON (in place where possible)."""
    choices = values or INTERESTING_VALUES
    for _ in range(ch.int(1, 3)):
        value = copy.deepcopy(ch.pick(choices))  # a copy: later edits must not change the constants
        containers = _containers(obj)
        if not containers:
            return value
        _, target = ch.pick(containers)
        op = ch.int(0, 5)
        if isinstance(target, dict):
            keys = list(target)
            if op <= 2 and keys:  # replace a value
                target[ch.pick(keys)] = value
            elif op == 3 and keys:  # delete a key
                del target[ch.pick(keys)]
            elif op == 4:  # add a key
                target[ch.pick(INTERESTING_KEYS + keys)] = value
            else:  # nest deeper
                if keys:
                    key = ch.pick(keys)
                    target[key] = [target[key]] if ch.chance(50) else {"x": target[key]}
        else:
            if op <= 2 and target:
                target[ch.int(0, len(target) - 1)] = value
            elif op == 3 and target:
                del target[ch.int(0, len(target) - 1)]
            else:
                target.insert(ch.int(0, len(target)), value)
    return obj


def _dump(obj: Any, ch: Chooser) -> bytes:
    text = json.dumps(obj, indent=ch.pick([None, 2]))
    return text.encode()


def mutate_safetensors(data: bytes, ch: Chooser) -> bytes:
    """Edit the header length, the header JSON, or the data region of a safetensors file."""
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, RecursionError):
        return mutate_bytes(data, ch)
    body = data[8 + n:]
    choice = ch.int(0, 9)
    if choice == 0:  # header length only
        length = ch.pick(INTERESTING_INTS + [n - 1, n + 1, n + 8, len(data), len(data) - 8]) % 2**64
        return length.to_bytes(8, "little") + data[8:]
    if choice == 1:  # data region only
        return data[:8 + n] + mutate_bytes(body, ch)
    if choice <= 7 and isinstance(header, dict):  # one tensor entry, field by field
        names = [k for k in header if k != "__metadata__"]
        if names and ch.chance(80):
            entry = header[ch.pick(names)]
            if isinstance(entry, dict):
                field = ch.pick(["dtype", "shape", "data_offsets"])
                if field == "dtype":
                    entry[field] = ch.pick(["F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "U8", "U16",
                                            "U32", "U64", "BOOL", "F8_E4M3", "F8_E5M2", "C64", "F4", "XX", 5, None])
                elif field == "shape":
                    shape = entry.get("shape") if isinstance(entry.get("shape"), list) else []
                    entry[field] = ch.pick([[], [0], [1], [-1], [3, 3], [2**31], [2**62, 4], "x", [1.5], None,
                                            shape[::-1], shape + [1], shape[:-1]])
                else:
                    offsets = entry.get("data_offsets") if isinstance(entry.get("data_offsets"), list) else []
                    a, b = (offsets + [0, 0])[:2]
                    a = a if isinstance(a, int) and not isinstance(a, bool) else 0
                    b = b if isinstance(b, int) and not isinstance(b, bool) else 0
                    entry[field] = ch.pick([[b, a], [a, b + 4], [a - 4, b], [a, 2**63], [a], [a, b, b], [a + 1, b],
                                            [0, len(body) + 1], [-8, b], [float(a), float(b)], None])
        else:
            header = mutate_json(header, ch)
    else:
        header = mutate_json(header, ch)
    text = _dump(header, ch)
    if ch.chance(80):  # the format pads the header to 8 bytes with spaces
        text += b" " * (-len(text) % 8)
    length = len(text) if ch.chance(85) else ch.pick([len(text) + 1, len(text) - 1, 0, 2**63])
    return length.to_bytes(8, "little") + text + body


def mutate_config_json(data: bytes, ch: Chooser) -> bytes:
    if ch.chance(25):
        return mutate_bytes(data, ch)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return mutate_bytes(data, ch)
    if ch.chance(5):  # deep nesting
        depth = ch.pick([100, 1000, 5000, 50_000])
        return b'{"x": ' + b"[" * depth + b"]" * depth + b"}"
    return _dump(mutate_json(obj, ch), ch)


def mutate_index_json(data: bytes, ch: Chooser) -> bytes:
    if ch.chance(20):
        return mutate_bytes(data, ch)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return mutate_bytes(data, ch)
    weight_map = obj.get("weight_map") if isinstance(obj, dict) else None
    if isinstance(weight_map, dict) and weight_map and ch.chance(60):
        key = ch.pick(sorted(weight_map))
        weight_map[key] = ch.pick(SHARD_NAMES + [5, None, ["a"]])
        if ch.chance(30):
            weight_map[ch.pick(["ghost.weight", key + ".x", ""])] = ch.pick(SHARD_NAMES)
    else:
        obj = mutate_json(obj, ch, INTERESTING_VALUES + SHARD_NAMES)
    return _dump(obj, ch)


def mutator_for(name: str) -> Callable[[bytes, Chooser], bytes]:
    if name.endswith(".safetensors"):
        return lambda data, ch: mutate_safetensors(data, ch) if ch.chance(75) else mutate_bytes(data, ch)
    if name.endswith(".index.json"):
        return mutate_index_json
    if name.endswith(".json"):
        return mutate_config_json
    return mutate_bytes


def mutate_directory(seed_dir: Path, work_dir: Path, ch: Chooser) -> list[str]:
    """Copy ``seed_dir`` to ``work_dir`` and mutate one or two of its files; return what was done."""
    if work_dir.exists():
        shutil.rmtree(work_dir)
    shutil.copytree(seed_dir, work_dir)
    done = []
    for _ in range(1 if ch.chance(70) else 2):
        files = sorted(p.name for p in work_dir.iterdir())
        weights = [f for f in files if f.endswith((".safetensors", ".bin"))]
        if not files:
            break
        # The weights are the main target, then config.json and the other JSON files.
        name = ch.pick(weights) if weights and ch.chance(55) else ch.pick(files)
        path = work_dir / name
        if ch.chance(3):
            path.unlink()
            done.append(f"deleted {name}")
            continue
        path.write_bytes(mutator_for(name)(path.read_bytes(), ch))
        done.append(f"mutated {name}")
    return done


# ==================================================================================================
# The property: loading gives a model or a pygen error, nothing else.
# ==================================================================================================

# from_pretrained is skipped when a mutated config asks for a big model (memory on shared machines).
MAX_SIZE_PRODUCT = 2**22
ITERATION_SECONDS = 60.0  # one iteration loads three times; longer is a hang (a finding)
_SIZE_WORDS = ("vocab", "hidden_size", "d_model", "d_latents", "num_latents", "ffn", "intermediate", "layers",
               "blocks", "attends", "position", "channels", "widening")


def config_is_small(directory: Path, model_class: type) -> bool:
    """Whether building ``model_class`` from ``directory`` is cheap: the product of the three largest
    sizes of its config (defaults included: widths, depths, vocabulary, positions) bounds any stack of
    weight matrices. A config that does not load counts as small: from_pretrained fails early."""
    try:
        with _quiet():
            data = model_class.config_class.from_pretrained(directory).to_dict()
    except PygenError:
        return True
    sizes = sorted((abs(v) for k, v in _items(data)
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    and not k.startswith(("_", "output_")) and any(w in k for w in _SIZE_WORDS)), reverse=True)
    product = 1
    for size in sizes[:3]:
        product *= max(size, 1)
    return product <= MAX_SIZE_PRODUCT


def _items(obj: Any):
    """(key, value) of every entry of nested dicts."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield str(key), value
            yield from _items(value)


@contextlib.contextmanager
def _quiet():
    """Loading broken checkpoints logs warnings by design; keep the fuzzer's output readable."""
    logger = logging.getLogger("pygen")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)


def load_everything(directory: Path, model_class: type) -> list[str]:
    """Run every loader on ``directory``. Pygen errors are expected; anything else propagates."""
    loaders = [("AutoConfig", lambda: AutoConfig.from_pretrained(directory)),
               ("load_state_dict", lambda: load_state_dict(directory))]
    if config_is_small(directory, model_class):
        loaders.append(("from_pretrained", lambda: model_class.from_pretrained(directory)))
    outcomes = []
    with _quiet():
        for name, load in loaders:
            try:
                load()
                outcomes.append(f"{name}: ok")
            except PygenError as exc:
                outcomes.append(f"{name}: {type(exc).__name__}")
    return outcomes


class Finding(Exception):
    """A loader raised something other than a pygen error, or hung."""


class Hang(BaseException):
    """Raised by the iteration timer (a BaseException, so no loader's ``except Exception`` eats it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`Hang` in the block after ``seconds`` (main thread only)."""
    def expire(signum, frame):
        raise Hang(f"one load took over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fuzz_one(seeds: dict[str, Path], work_dir: Path, ch: Chooser,
             seconds: Optional[float] = None) -> tuple[str, list[str]]:
    """Mutate one seed and load it; ``seconds`` bounds the loading (libFuzzer has its own -timeout)."""
    family = ch.pick(sorted(seeds))
    done = mutate_directory(seeds[family], work_dir, ch)
    try:
        with time_limit(seconds) if seconds else contextlib.nullcontext():
            load_everything(work_dir, FAMILIES[family])
    except (Exception, Hang) as exc:  # noqa: BLE001 - anything but a PygenError is a finding
        raise Finding(f"{family}: {'; '.join(done)}: {type(exc).__name__}: {exc}") from exc
    return family, done


def save_finding(work_dir: Path, findings: Path, family: str, text: str) -> Path:
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(work_dir.iterdir()))).hexdigest()[:12]
    target = findings / f"{family}-{digest}"
    if not target.exists():
        shutil.copytree(work_dir, target)
        (target / "FINDING.txt").write_text(text)
    return target


def limit_memory(gigabytes: float) -> None:
    """Cap this process's address space at its current size plus ``gigabytes``, so a huge
    allocation fails (as a MemoryError / RuntimeError) instead of swapping a shared machine."""
    with open("/proc/self/status") as f:
        current_kb = int(next(line for line in f if line.startswith("VmSize:")).split()[1])
    limit = current_kb * 1024 + int(gigabytes * 2**30)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# ==================================================================================================
# Engines
# ==================================================================================================


def run_random(seeds, work_dir: Path, findings: Path, iterations: int, seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    start, count, found = time.monotonic(), 0, 0
    stats: dict[str, int] = {}
    while count < iterations and time.monotonic() - start < seconds:
        ch = RandomChooser(random.Random(rng.getrandbits(64)))
        try:
            family, _ = fuzz_one(seeds, work_dir, ch, ITERATION_SECONDS)
            stats[family] = stats.get(family, 0) + 1
        except Finding as finding:
            found += 1
            family = str(finding).split(":")[0]
            text = "".join(traceback.format_exception(finding.__cause__))
            where = save_finding(work_dir, findings, family, f"{finding}\n\n{text}")
            print(f"FINDING {finding}\n  saved to {where}\n{text}", flush=True)
        count += 1
    elapsed = time.monotonic() - start
    print(f"random engine: seed {seed}, {count} iterations in {elapsed:.1f}s ({stats}), {found} findings",
          flush=True)
    return 1 if found else 0


def run_atheris(seeds, work_dir: Path, argv: list[str]) -> None:
    import atheris

    families = sorted(seeds)

    def test_one_input(data: bytes) -> None:
        ch = AtherisChooser(atheris.FuzzedDataProvider(data))
        fuzz_one({f: seeds[f] for f in families}, work_dir, ch)

    atheris.Setup([sys.argv[0]] + argv, test_one_input)
    atheris.Fuzz()


def replay(directory: Path, family: str) -> int:
    print(load_everything(directory, FAMILIES[family]))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["random", "atheris"], default="random")
    parser.add_argument("--iterations", type=int, default=10**9)
    parser.add_argument("--seconds", type=float, default=math.inf)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--memory-gb", type=float, default=3.0,
                        help="address space allowed beyond the start-up size (0: no cap)")
    parser.add_argument("--replay", type=Path, help="load one saved directory and print the outcome")
    parser.add_argument("--family", choices=sorted(FAMILIES), default="bart", help="with --replay")
    parser.add_argument("libfuzzer_args", nargs="*", help="after --: passed to libFuzzer (atheris)")
    args = parser.parse_args(argv)
    if args.memory_gb:
        limit_memory(args.memory_gb)
    torch.set_num_threads(1)
    if args.replay:
        return replay(args.replay, args.family)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    with tempfile.TemporaryDirectory(prefix="pygen-fuzz-") as tmp:
        seeds = make_seeds(Path(tmp) / "seeds", seed)
        work_dir = Path(tmp) / "work"
        if args.engine == "atheris":
            run_atheris(seeds, work_dir, args.libfuzzer_args)
            return 0
        args.findings.mkdir(parents=True, exist_ok=True)
        return run_random(seeds, work_dir, args.findings, args.iterations, args.seconds, seed)


if __name__ == "__main__":
    sys.exit(main())

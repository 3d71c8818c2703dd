"""generate()'s encoder pass without padding against the padded pass, side by side in one process.

The work generate() does once per call before decoding, on a BART-base-shaped random model:
the encoder over a padded batch, then every decoder layer's cross-attention keys and values.
"padded" runs the encoder forward and projects all positions; "unpadded" is what generate() runs
(``gen_encode`` + ``gen_new_cache``: the token-by-token work on the real tokens only, see
pygen/models/_unpadded.py). Sources as in benchmarks/generate.py (batch 8, lengths drawn from
[0.6, 1] x ``--source-len``, the first full). Repetitions alternate; medians; speedup = padded /
unpadded. The real tokens' encoder states are checked to be identical.

    python benchmarks/unpadded_encoder.py --threads 1
    python benchmarks/unpadded_encoder.py --threads 2 --batch 16 --source-len 256
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from generate import build_bart, quiet_transformers
from machine import machine

import pygen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--source-len", type=int, default=128)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_transformers()
    with tempfile.TemporaryDirectory() as directory:
        build_bart(directory)
        model = pygen.BartForConditionalGeneration.from_pretrained(directory).eval()
    gen = torch.Generator().manual_seed(0)
    length = args.source_len
    ids = torch.randint(1000, model.config.vocab_size - 100, (args.batch, length), generator=gen)
    lengths = torch.randint(int(length * 0.6), length + 1, (args.batch,), generator=gen)
    lengths[0] = length
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    decoder_layers = model.model.decoder.layers

    def padded():
        states = model.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        for layer in decoder_layers:
            layer.encoder_attn.project_kv(states)
        return states

    def unpadded():
        states = model.gen_encode(ids, mask)
        model.gen_new_cache(states, mask, args.batch, 1, 2)
        return states

    times = {"padded": [], "unpadded": []}
    with torch.inference_mode():
        real = mask.bool()
        same = torch.equal(padded()[real], unpadded()[real])
        for _ in range(args.reps):
            for name, run in (("padded", padded), ("unpadded", unpadded)):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(machine("cpu"))
    print(f"batch {args.batch} x {length} positions, {int(mask.sum())} real tokens; "
          f"real tokens' states identical: {same}")
    print("| padded s | unpadded s | speedup |\n|---|---|---|")
    print(f"| {medians['padded']:.3f} | {medians['unpadded']:.3f} | "
          f"**{medians['padded'] / medians['unpadded']:.2f}x** |")


if __name__ == "__main__":
    main()

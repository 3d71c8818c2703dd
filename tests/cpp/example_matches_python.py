"""ctest example_matches_python: the C++ example host (examples/cpp/generate) on random-weight
checkpoints written by the Python test helpers produces exactly the ids transformers' generate()
produces, greedy and beam search, for BART (single file and sharded) and EncoderDecoder pairs.

    python tests/cpp/example_matches_python.py BUILD/examples/generate

Exit status 0: all equal; 1: a difference (printed); 77: torch or transformers is missing (ctest
reports the test as skipped).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

try:
    import torch
    import transformers
except ImportError as e:  # the C++ build does not need Python; this check does
    print(f"skipped: {e}")
    sys.exit(77)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoints  # noqa: E402

CASES = [  # (checkpoint, generate() arguments)
    ("bart", {"max_new_tokens": 12}),
    ("bart", {"num_beams": 4, "max_new_tokens": 12}),
    ("bart", {"num_beams": 4, "max_new_tokens": 12, "num_return_sequences": 2}),
    ("bart_sharded", {"num_beams": 3, "max_new_tokens": 10}),
    ("bert2bertgen", {"max_new_tokens": 12}),
    ("bert2bertgen", {"num_beams": 4, "max_new_tokens": 12}),
    ("roberta2roberta", {"num_beams": 4, "max_new_tokens": 12}),
]


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = Path(sys.argv[1])
    start = time.time()
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        models = checkpoints.build(tmp, sorted({name for name, _ in CASES}))
        greedy_ids = {}
        for name, kwargs in CASES:
            model, path = models[name]
            rows, ids, mask = checkpoints.batch_of(model, [7, 3, 11, 1, 5], seed=len(name))
            with torch.no_grad():
                want = model.generate(ids, attention_mask=mask, output_scores=True, return_dict_in_generate=True,
                                      **kwargs)
            got, scores = checkpoints.run_example(binary, path, rows, kwargs)
            beams = kwargs.get("num_beams", 1)
            same = got == want.sequences.tolist()
            if same and beams > 1:
                same = torch.allclose(torch.tensor(scores), want.sequences_scores, atol=1e-4)
            if beams == 1:
                greedy_ids[name] = got
            elif greedy_ids.get(name) == got:
                same = False
                print(f"  {name}: beam search gives the greedy ids: the weights cannot tell them apart")
            print(f"{'ok  ' if same else 'FAIL'} {name:16s} {kwargs}: {len(got)} rows")
            if not same:
                failures += 1
                print(f"  C++   : {got}\n  Python: {want.sequences.tolist()}")
    print(f"{len(CASES) - failures}/{len(CASES)} cases equal in {time.time() - start:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Builds pygen's C++ library, example host and C++ tests with AddressSanitizer + UndefinedBehavior-
# Sanitizer (-DPYGEN_SANITIZE=ON) and runs ctest under them: the unit tests (loader errors, four
# threads on one model...), a bounded run of the checkpoint-reader fuzzer, and the example host
# against transformers' generate() (that one needs a Python with torch + transformers, else it is
# skipped). Not part of CI (the instrumented build took 20 minutes on 2 busy cores); results are
# recorded in docs/cpp.md.
#
#   scripts/sanitize.sh [BUILD_DIR]          default /tmp/pygen-asan; JOBS=2 parallel compile jobs
#   FUZZ_SECONDS=600 scripts/sanitize.sh     also a longer fuzz run under the sanitizers
#
# Sanitizer options: ASan's defaults, LeakSanitizer included (libtorch is not instrumented, but the
# run on 2026-11-23 reported no leaks, so no suppression is needed), plus UBSAN_OPTIONS
# halt_on_error=1:print_stacktrace=1 so a UBSan finding fails the test (the build also uses
# -fno-sanitize-recover=undefined). If a future libtorch reports its own one-time allocations at
# exit, run with ASAN_OPTIONS=detect_leaks=0 and say so in docs/cpp.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-/tmp/pygen-asan}"
python="${PYTHON:-$(command -v python3 || command -v python)}"
torch_prefix="$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"

cmake -S . -B "$build" -DPYGEN_SANITIZE=ON -DCMAKE_PREFIX_PATH="$torch_prefix" -DPYGEN_PYTHON="$python"
cmake --build "$build" -j "${JOBS:-2}"

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
start=$(date +%s)
ctest --test-dir "$build" --output-on-failure
if [[ -n "${FUZZ_SECONDS:-}" ]]; then
  "$build/fuzz_checkpoint" --seconds "$FUZZ_SECONDS" --seed "${FUZZ_SEED:-$RANDOM}" --findings "$build/findings"
fi
echo "sanitize.sh: clean under ASan + UBSan ($(( $(date +%s) - start )) s of tests)"

#!/usr/bin/env bash
# The sanitizer job (`make sanitize`, and a step of .ci/run): the AVX2 CPU kernels built with
# AddressSanitizer + UndefinedBehaviorSanitizer (setup.py, FASTLOSS_SANITIZE=1) into build/sanitize,
# loaded into the normal, uninstrumented torch with the ASAN runtime preloaded, then run over
#   1. the tests that reach the kernels with random, hostile, edge and huge input (SANITIZE_TESTS),
#   2. the fuzzer (scripts/fuzz_ops.py: every torch.ops.fastloss op called directly with mutated
#      shapes, strides, offsets, dtypes, labels and enum codes) for FUZZ_SECONDS,
#   3. the LibTorch (CMake) build compiled the same way (while the fuzzer runs), and its ctest.
# Any sanitizer report ends its process with an error (ASAN halts on the first error; UBSAN with
# -fno-sanitize-recover=undefined and halt_on_error=1), and so the job.
#   bash scripts/sanitize.sh [PYTHON]     (default .venv/bin/python)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${1:-$root/.venv/bin/python}"
case "$py" in /*) ;; *) py="$PWD/$py" ;; esac  # (not realpath: a venv's python is a symlink)
out="$root/build/sanitize"
lib="$out/lib"
FUZZ_SECONDS="${FUZZ_SECONDS:-180}"
# Every kernel-backed op through its tests: random and edge cases, hypothesis properties, bad input,
# special values (NaN, ±inf), empty inputs, every tail length, > 2^31 elements (tests/test_large_index.py).
# Left out: the bitwise digests (-O1 fuses other a·b + c than the release build), build/CLI tests
# about the installed package, torch.compile (minutes of uninstrumented compiler work per test), the
# multi-process gloo runs (their kernels are the overlap kernels the other tests reach; four sanitized
# interpreters at once would only add minutes).
tests=(tests --ignore=tests/test_bitwise.py --ignore=tests/test_build.py --ignore=tests/test_examples.py
       --ignore=tests/test_distributed.py -k "not compile")
[ -z "${SANITIZE_TESTS:-}" ] || read -ra tests <<< "$SANITIZE_TESTS"  # (a narrower selection, by hand)

cd "$root"
rm -rf "$lib"
mkdir -p "$lib"
# The package's Python files beside the sanitized binaries (nothing built in place is taken).
cp -r python/fastloss "$lib/"
find "$lib/fastloss" \( -name '*.so' -o -name '_build_info.py' -o -name __pycache__ \) \
  -prune -exec rm -rf {} +
FASTLOSS_SANITIZE=1 "$py" setup.py -q build_ext --build-lib "$lib" --build-temp "$out/tmp" > "$out/build.log" 2>&1 ||
  { tail -n 40 "$out/build.log"; exit 1; }

# The ASAN runtime must be the first library in the process (python and torch are not instrumented),
# and libstdc++ must be loaded when it starts: else its __cxa_throw interceptor finds nothing to wrap
# and the first C++ exception (torch's import throws some) aborts. libubsan is the modules' own
# dependency.
asan="$(${CXX:-g++} -print-file-name=libasan.so)"
stdcxx="$(${CXX:-g++} -print-file-name=libstdc++.so)"
test -f "$asan" || { echo "sanitize: no libasan.so beside ${CXX:-g++} (install the compiler's libasan)"; exit 1; }
# detect_leaks=0: CPython and torch keep objects alive until exit by design (interned strings, the op
# registry, thread pools); LeakSanitizer would report those at exit, none of them ours.
# allocator_may_return_null=1: a fuzzed size too large to allocate (num_classes = 2^31 dense targets)
# is torch's plain "not enough memory" RuntimeError, as without ASAN, not a sanitizer abort.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
export FASTLOSS_CPU_CAPABILITY=avx2 PYTHONPATH="$lib" PYTHONDONTWRITEBYTECODE=1
run() { LD_PRELOAD="$asan $stdcxx" "$@"; }

# The sanitized modules are the ones loaded, and they are instrumented.
module="$(run "$py" -c 'import fastloss; print(fastloss._backend._CPU.__file__)')"
case "$module" in "$lib"/*) ;; *) echo "sanitize: loaded $module, not the sanitized build"; exit 1 ;; esac
undefined="$(nm -D --undefined-only "$module")"
grep -q __asan_report_load <<< "$undefined" || { echo "sanitize: $module lacks ASAN"; exit 1; }
grep -q __ubsan_handle_add_overflow <<< "$undefined" || { echo "sanitize: $module lacks UBSAN"; exit 1; }
echo "sanitize: $module (ASAN + UBSAN)"

# (--capture=sys: pytest's default fd capture would swallow a report written to fd 2 as the process dies)
# (PYTEST_XDIST, the Makefile's: the workers inherit the preload)
run "$py" -m pytest -q -p no:cacheprovider --capture=sys -x ${PYTEST_XDIST:-} "${tests[@]}"

# The fuzzer (one process: one core, for a fixed time) runs while the LibTorch build, instrumented
# the same way, compiles; then that build's C++ test (an executable: no preload needed).
run "$py" scripts/fuzz_ops.py --seconds "$FUZZ_SECONDS" > "$out/fuzz.log" 2>&1 &
fuzz=$!
trap 'kill $fuzz 2>/dev/null || true' EXIT
cmake -S . -B "$out/cmake" -G Ninja -DPython3_EXECUTABLE="$py" -DFASTLOSS_SANITIZE=ON >/dev/null
cmake --build "$out/cmake" -j "${MAX_JOBS:-2}" >/dev/null
fuzz_status=0
wait $fuzz || fuzz_status=$?
trap - EXIT
# (its log holds the C++ frames of the Python errors it provokes: its own lines say what ran; a
# failure's report is at the end)
if [ $fuzz_status -ne 0 ]; then
  tail -n 200 "$out/fuzz.log"
  echo "sanitize: the fuzzer failed (exit $fuzz_status); its log: $out/fuzz.log"
  exit 1
fi
grep '^fuzz: [0-9]' "$out/fuzz.log"
(cd "$out/cmake" && ctest --output-on-failure)
echo "sanitize: no sanitizer report"

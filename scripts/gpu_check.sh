#!/usr/bin/env bash
# The one command for a lent GPU machine: a fresh box with one GPU, torch, pytest and nvcc, no
# network, ≤ 10 minutes per command. Preflight, a build for that GPU only (one CPU flavour, all
# cores), `check`, the CUDA tests and the CUDA-vs-CPU parity suite — one pytest process per op
# family, so a device-side assert cannot hide the rest —, compute-sanitizer (memcheck, racecheck,
# synccheck, initcheck) on tiny cases, then the CUDA benchmark (torch.compile
# rows only where Triton exists and time is left). Every step has a time limit; everything lands in
# $OUT (summary.json, preflight.json, bench JSON, junit XML, one log per step). Target: ≤ 7 minutes.
#   bash scripts/gpu_check.sh              OUT=/tmp/r PYTHON=python3.12 bash scripts/gpu_check.sh
#   bash scripts/gpu_check.sh --dry-run    the same steps on this CPU machine and its built tree: no
#                                          build, CUDA parts reported as skipped (CI runs this).
# Its ninja, setuptools and hypothesis come from wheelhouse/ (`make gpu-wheelhouse`, cp312 wheels, git-ignored;
# pass it with the device tool's `carry`), installed offline when missing.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT="${OUT:-$PWD/gpu-results}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
: >"$OUT/steps.tsv"
START=$(date +%s)
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" FASTLOSS_TESTS_OPTIONAL_PEERS=1
FAILED=0

# step NAME LIMIT_SECONDS COMMAND...: runs it with a time limit, its output to $OUT/NAME.log
step() {
  local name="$1" limit="$2" t0 rc status
  shift 2
  t0=$(date +%s)
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  status=$([ $rc -eq 0 ] && echo ok || ([ $rc -eq 124 ] && echo timeout || echo "failed ($rc)"))
  [ $rc -eq 0 ] || FAILED=1
  printf '%s\t%s\t%s\n' "$name" "$status" "$(($(date +%s) - t0))" >>"$OUT/steps.tsv"
  echo "== $name: $status in $(($(date +%s) - t0)) s (total $(($(date +%s) - START)) s)"
  [ $rc -eq 0 ] || tail -n 5 "$OUT/$name.log"
  return $rc
}
skip() {
  printf '%s\tskipped: %s\t0\n' "$1" "$2" >>"$OUT/steps.tsv"
  echo "== $1: skipped ($2)"
}

step preflight 60 "$PY" scripts/gpu_preflight.py "$OUT/preflight.json" || { [ $DRY -eq 1 ] || exit 1; }
HAS_GPU=$("$PY" -c "import json; print(int(bool(json.load(open('$OUT/preflight.json'))['gpu'])))")
HAS_TRITON=$("$PY" -c "import json; print(int(json.load(open('$OUT/preflight.json'))['triton']))")

if [ -d wheelhouse ] && ! "$PY" -c "import ninja, hypothesis, setuptools" 2>/dev/null; then
  step wheelhouse 120 "$PY" -m pip install --no-index --find-links wheelhouse ninja hypothesis setuptools
fi

if [ $DRY -eq 1 ]; then
  skip build "dry run: the tree is already built"
  DEVICE=cpu
else
  CAP=$("$PY" -c "import json; print(json.load(open('$OUT/preflight.json'))['capability'])")
  flavour=avx2
  [ "$(uname -m)" = x86_64 ] || flavour=default
  step build 360 env FASTLOSS_CUDA=1 TORCH_CUDA_ARCH_LIST="$CAP" FASTLOSS_CPU_FLAVOURS=$flavour MAX_JOBS="$(nproc)" \
    "$PY" setup.py build_ext --inplace || exit 1
  DEVICE=cuda
fi
step info 60 "$PY" -m fastloss info
step check 180 "$PY" -m fastloss check --device $DEVICE

# The CUDA tests (their CUDA variants; on a dry run they skip) and the parity suite, per op family.
# (-k: the family's CUDA variants, and its parity cases — whose module name holds "cuda" too)
# (the families: every op record with a parity plan, fastloss._spec; each has tests/test_<family>.py)
read -ra FAMILIES <<< "$("$PY" -c 'import fastloss, fastloss._spec as s; print(*s.plans())')"
[ ${#FAMILIES[@]} -gt 0 ] || { echo "gpu_check: no op family found"; exit 1; }
if [ $DRY -eq 1 ]; then  # (they skip on a CPU: one process for all, not eleven torch start-ups)
  files=() parity=""
  for family in "${FAMILIES[@]}"; do
    files+=("tests/test_${family}.py") parity="$parity or (test_cuda_parity and $family)"
  done
  step pytest_families 240 "$PY" -m pytest -q -p no:cacheprovider -rs --junitxml="$OUT/pytest_families.xml" \
    tests/test_cuda_parity.py "${files[@]}" -k "(cuda and not test_cuda_parity)$parity"
else
  for family in "${FAMILIES[@]}"; do
    step "pytest_$family" 240 "$PY" -m pytest -q -p no:cacheprovider -rs --junitxml="$OUT/pytest_$family.xml" \
      tests/test_cuda_parity.py "tests/test_${family}.py" \
      -k "(cuda and not test_cuda_parity) or (test_cuda_parity and $family)"
  done
fi
step pytest_guarantees 180 "$PY" -m pytest -q -p no:cacheprovider --junitxml="$OUT/pytest_guarantees.xml" \
  tests/test_guarantees.py tests/test_build.py -k "cuda"

# NVIDIA's compute-sanitizer over tiny cases of every family (memcheck without torch's caching
# allocator, so that its blocks' bounds are the tensors'), where the toolkit has it.
SANITIZER="$(command -v compute-sanitizer || ls "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" 2>/dev/null)"
if [ $HAS_GPU -eq 1 ] && [ -n "$SANITIZER" ]; then
  for tool in memcheck racecheck synccheck initcheck; do
    step "sanitizer_$tool" 75 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SANITIZER" --tool "$tool" --error-exitcode 1 \
      "$PY" scripts/gpu_sanitize.py
  done
elif [ $DRY -eq 1 ]; then
  step sanitizer_dry 60 "$PY" scripts/gpu_sanitize.py
else
  skip sanitizer "no compute-sanitizer in this CUDA toolkit"
fi

if [ $HAS_GPU -eq 1 ]; then
  step bench_cuda 180 "$PY" -m fastloss bench --device cuda --no-compile --json "$OUT/bench_cuda.json"
  left=$((420 - ($(date +%s) - START)))
  if [ $HAS_TRITON -eq 1 ] && [ $left -gt 60 ]; then
    step bench_cuda_compile "$left" "$PY" -m fastloss bench --device cuda --json "$OUT/bench_cuda_compile.json"
  else
    skip bench_cuda_compile "no Triton, or less than a minute left of the 7"
  fi
  step bench_cuda_bf16 90 "$PY" -m fastloss bench --device cuda --dtype bfloat16 --no-compile \
    --json "$OUT/bench_cuda_bf16.json"
  # the ultralytics criteria at 16 × 8,400 × 80 and RT-DETR's (ultralytics' own rows where it is installed)
  step bench_cuda_criteria 120 "$PY" -m fastloss bench --device cuda --no-compile --case v8,RTDETR \
    --peers scripts/bench_peers.py --json "$OUT/bench_cuda_criteria.json"
else
  # A dry run proves the benchmark step on one small case.
  step bench_dry 120 "$PY" -m fastloss bench --device cpu --case "giou_loss 1000k" --repeat 2 --warmup 1 --no-compile \
    --json "$OUT/bench_cpu.json"
fi

"$PY" - "$OUT" "$START" "$DRY" <<'PYEOF'
import json, os, sys, time, glob
import xml.etree.ElementTree as ET
out, start, dry = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
steps = [dict(zip(("name", "status", "seconds"), line.rstrip("\n").split("\t"))) for line in open(f"{out}/steps.tsv")]
tests = {}
for path in glob.glob(f"{out}/pytest_*.xml"):
    suite = ET.parse(path).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    tests[os.path.basename(path)[7:-4]] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
summary = {"dry_run": dry, "seconds": int(time.time()) - start, "steps": steps, "tests": tests,
           "preflight": json.load(open(f"{out}/preflight.json"))}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
print(json.dumps({k: summary[k] for k in ("dry_run", "seconds", "tests")}, indent=1))
PYEOF
echo "== done in $(($(date +%s) - START)) s; results in $OUT"
exit $FAILED

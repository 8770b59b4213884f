#!/usr/bin/env bash
# One command for a machine with a GPU and no network, whose torch may differ from ours (e.g. torch
# 2.11 + CUDA 13, Python 3.12): builds fastloss in place against the installed torch (for the GPU
# present), runs the whole suite with CUDA available, `check` and `bench` on CUDA, and writes every
# log to $OUT (default ./gpu-results). Exit status: the test suite's.
#   bash scripts/gpu_check.sh            PYTHON=python3.12 OUT=/tmp/r bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-results}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export FASTLOSS_CUDA=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" FASTLOSS_TESTS_OPTIONAL_PEERS=1
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
step() { echo "== $* ($(date -u +%H:%M:%S))" | tee -a "$OUT/summary.txt"; }

step environment
{ date -u; nvidia-smi; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))"; } >"$OUT/env.txt" 2>&1
tail -n 1 "$OUT/env.txt" | tee -a "$OUT/summary.txt"
# Compile only for the GPU present (minutes matter here), unless the caller chose.
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability(0))")}"

step "build (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST)"
if ! "$PY" setup.py build_ext --inplace >"$OUT/build.log" 2>&1; then
  tail -n 40 "$OUT/build.log" | tee -a "$OUT/summary.txt"
  exit 1
fi
"$PY" -m fastloss info 2>&1 | tee "$OUT/info.txt" >>"$OUT/summary.txt"

step "check --device cuda"
"$PY" -m fastloss check --device cuda >"$OUT/check.txt" 2>&1
tail -n 1 "$OUT/check.txt" | tee -a "$OUT/summary.txt"

step "pytest (CPU and CUDA)"
"$PY" -m pytest tests -q -rs -p no:cacheprovider >"$OUT/pytest.log" 2>&1
test_status=$?
tail -n 3 "$OUT/pytest.log" | tee -a "$OUT/summary.txt"

for dtype in float32 bfloat16; do
  step "bench --device cuda --dtype $dtype"
  "$PY" -m fastloss bench --device cuda --dtype "$dtype" --json "$OUT/bench_cuda_$dtype.json" \
    >"$OUT/bench_cuda_$dtype.txt" 2>&1
  grep '^|' "$OUT/bench_cuda_$dtype.txt" | tee -a "$OUT/summary.txt"
done
step done
exit $test_status

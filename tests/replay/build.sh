#!/usr/bin/env bash
# Builds tests/replay's torch-free replay of the CPU kernels: csrc/ops.cpp and csrc/cpu/*.cpp, as the
# release build compiles them (build_facts.mk's KERNEL_CXX_FLAGS), with fake_torch.cpp and replay.cpp.
#   tests/replay/build.sh OUT_DIR CXX TORCH_INCLUDE_DIR [flavour flags...]
set -euo pipefail
out=$1 cxx=$2 torch_include=$3
shift 3
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
facts() { "${PYTHON:-python3}" "$root/scripts/build_facts.py" "$1"; }  # build_facts.mk
read -ra kernel_flags <<< "$(facts KERNEL_CXX_FLAGS)"
flags=(-std=c++20 "${kernel_flags[@]}" -fvisibility=hidden "-DTORCH_TARGET_VERSION=$(facts TORCH_TARGET_VERSION)"
       -DFASTLOSS_CPU_MODULE "-I$root/csrc" "-I$root/tests/replay" "-I$torch_include" "$@")
sources=("$root/csrc/ops.cpp" "$root"/csrc/cpu/*.cpp "$root/tests/replay/fake_torch.cpp" "$root/tests/replay/replay.cpp")
printf '%s\n' "${sources[@]}" | xargs -P "${MAX_JOBS:-2}" -I{} sh -c \
  'o="$0/$(basename {} .cpp).o"; cxx=$1; shift; "$cxx" "$@" -c {} -o "$o" || exit 255' "$out" "$cxx" "${flags[@]}"
"$cxx" -static -pthread "$out"/*.o -o "$out/replay" 2>&1 | { grep -v -e 'statically linked' -e 'libtorch_symbol' || true; }  # (ops.cpp's dlopen: null here)
echo "$out/replay"

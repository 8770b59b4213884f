# The README's two commands, from a fresh clone:
#   make bench   the main job: virtualenv + pinned dev requirements, build the extension, benchmark
#   make test    the same environment and build, then the test suite
# Release (docs/installing.md): make wheel, make wheel-test, make sdist-test, make second-torch-test.
# FASTLOSS_CUDA=1 forces the CUDA kernels to compile (CI does), =0 skips them; default: when possible.
include build_facts.mk  # the build facts (minimum torch, flags, architectures), which setup.py and CMake read too
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH_ARGS ?=
PYTEST_ARGS ?=
# The suite runs on TEST_JOBS pytest-xdist workers (default: one per CPU, at most 4; each is a torch
# process of about 1 GiB; the > 2^31-element tests share one worker: tests/test_large_index.py).
# TEST_JOBS=0 runs it in this one process. Exported to scripts/test_installed.sh and sanitize.sh.
TEST_JOBS ?= $(shell n=$$(nproc); echo $$((n < 4 ? n : 4)))
export PYTEST_XDIST := -n $(TEST_JOBS) --dist loadgroup
# The second torch CI tests against (CPU-only; lies on this machine's disk), in its own virtualenv.
SECOND_TORCH ?= 2.13.0+cpu
VENV2 ?= .venv-torch$(basename $(SECOND_TORCH))
PY2 := $(VENV2)/bin/python
export MAX_JOBS ?= 2
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# torch.compile's kernel cache, one per CPU capability: Inductor's cache key leaves out
# ATEN_CPU_CAPABILITY, and a kernel compiled under one capability and reused under another gave wrong
# gradients (torch 2.14.1, on this AVX-512 machine with ATEN_CPU_CAPABILITY=avx2).
export TORCHINDUCTOR_CACHE_DIR ?= $(CURDIR)/build/torchinductor-$(or $(ATEN_CPU_CAPABILITY),default)

.PHONY: bench test peers build check info cmake-test wheel wheel-test sdist sdist-test \
	second-torch-test oldest-torch-test docs lint format aarch64-kernels aarch64-math sanitize gpu-wheelhouse gpu-check-dry cuda-emulate math-exhaustive print-math-flags clean

$(VENV)/.deps: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	# the package is used in place from python/ (build_ext --inplace puts _C beside it)
	echo "$(CURDIR)/python" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/fastloss-dev.pth"
	touch $@

build: $(VENV)/.deps
	$(PY) setup.py -q build_ext --inplace

bench: build peers
	$(PY) -m fastloss bench --peers scripts/bench_peers.py $(BENCH_ARGS)

test: build peers
	$(PY) -m pytest tests $(PYTEST_XDIST) $(PYTEST_ARGS)

# Test oracles that cannot be pip-installed here: mmdet 3.3.0's wheel, whose pure-torch loss files
# tests/mmdet_peer.py loads (mmdet itself needs a compiled mmcv that no wheel provides for this torch),
# nnU-Net v2's, whose loss files tests/nnunet_peer.py loads (its package pulls a training stack), and
# mmrotate 0.3.4's, whose Gaussian-distance loss files tests/mmrotate_peer.py loads (it needs mmcv-full).
MMDET_WHEEL := .peers/mmdet-3.3.0-py3-none-any.whl
NNUNET_WHEEL := .peers/nnunetv2-2.8.1-py3-none-any.whl
MMROTATE_WHEEL := .peers/mmrotate-0.3.4-py3-none-any.whl
peers: $(MMDET_WHEEL) $(NNUNET_WHEEL) $(MMROTATE_WHEEL)
$(MMDET_WHEEL): $(VENV)/.deps
	$(PY) -m pip download -q --no-deps mmdet==3.3.0 -d .peers
$(NNUNET_WHEEL): $(VENV)/.deps
	$(PY) -m pip download -q --no-deps nnunetv2==2.8.1 -d .peers
$(MMROTATE_WHEEL): $(VENV)/.deps
	$(PY) -m pip download -q --no-deps mmrotate==0.3.4 -d .peers

# Lint: ruff's formatter and linter over the Python (pyproject.toml's [tool.ruff]), clang-format over
# the C++ and CUDA (.clang-format); `make format` rewrites the files instead of failing.
CXX_SOURCES = $(shell find csrc tests -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' | sort)
lint: $(VENV)/.deps
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .
	@echo "clang-format --dry-run --Werror: $(words $(CXX_SOURCES)) C++/CUDA files"
	@$(VENV)/bin/clang-format --dry-run --Werror $(CXX_SOURCES)
	@echo "lint: clean"

format: $(VENV)/.deps
	$(VENV)/bin/ruff format --quiet .
	$(VENV)/bin/ruff check --fix --quiet .
	$(VENV)/bin/clang-format -i $(CXX_SOURCES)

# The documentation site (docs/: Sphinx, MyST pages, API pages from the docstrings) into build/docs;
# a warning fails it.
docs: build
	$(PY) -m sphinx -W --keep-going -q -b html docs build/docs
	@echo "documentation: build/docs/index.html"

check: build
	$(PY) -m fastloss check

info: build
	$(PY) -m fastloss info

# The release wheel into dist/, from the objects `build` compiled (no second compile), then checked:
# abi3 + manylinux_2_28 tags, torch pin, local version, symbols, size (scripts/check_wheel.py).
wheel: build
	rm -rf build/lib.* build/bdist.* dist/*.whl
	$(PY) -m pip wheel -q --no-build-isolation --no-deps -w dist .
	$(PY) scripts/check_wheel.py dist/fastloss-*.whl

# That wheel installed into a clean virtualenv (no source tree on its path): check + WHEEL_TESTS
# (below; `make test` ran the whole suite on the same objects in place; WHEEL_TESTS= runs it all).
wheel-test: wheel peers
	TEST_FILES="$(WHEEL_TESTS)" bash scripts/test_installed.sh dist/fastloss-*.whl

# The sdist: complete (against git ls-files), and it builds (CPU kernels) and passes the tests.
sdist: $(VENV)/.deps
	rm -rf dist/sdist
	$(PY) -m build -q --sdist --no-isolation -o dist/sdist .
	$(PY) scripts/check_sdist.py dist/sdist/fastloss-*.tar.gz

# What tells an installed wheel, another build (the sdist's) or another torch apart from what
# `make test` ran, for wheel-test, sdist-test and second-torch-test: the build and CLI tests, every
# kernel call of the bitwise cases against the recorded digests, the guarantees over every op
# (torch.compile, torch.func, autocast, higher-order gradients, special values), the examples and
# the README's. RELEASE_TESTS= runs the whole suite.
RELEASE_TESTS ?= test_build.py test_bitwise.py test_guarantees.py test_examples.py test_readme.py
# The installed wheel under the torch `make test` ran: the same, but for the guarantees, which ran
# there on the same objects (their other flavour gives the same bits: test_bitwise).
WHEEL_TESTS ?= test_build.py test_bitwise.py test_examples.py test_readme.py
# The sdist's CPU build: what tells another build apart (the Python code is the same files).
SDIST_TESTS ?= test_build.py test_bitwise.py

sdist-test: sdist peers
	rm -rf build/from-sdist && mkdir -p build/from-sdist
	tar -xzf dist/sdist/fastloss-*.tar.gz -C build/from-sdist --strip-components=1
	cd build/from-sdist && FASTLOSS_CUDA=0 $(CURDIR)/$(PY) -m pip wheel -q --no-build-isolation --no-deps -w dist .
	$(PY) scripts/check_wheel.py build/from-sdist/dist/fastloss-*.whl
	TEST_FILES="$(SDIST_TESTS)" bash scripts/test_installed.sh build/from-sdist/dist/fastloss-*.whl

# The supported-torch claim, tested: the release wheel of `make wheel` (built against this venv's torch,
# CUDA kernels included), installed unchanged under SECOND_TORCH (CPU-only) and tested there.
# $(call torch_venv,DIR,TORCH): a virtualenv with that torch and the dev requirements, but for
# torchvision (PyPI's pins its own torch) and ultralytics (it requires torchvision).
define torch_venv
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q "torch==$(2)"
	grep -v -E '^(torch|torchvision|ultralytics)==' requirements-dev.txt > $(1)/requirements.txt
	$(1)/bin/python -m pip install -q -r $(1)/requirements.txt
endef

$(VENV2)/.deps: requirements-dev.txt
	$(call torch_venv,$(VENV2),$(SECOND_TORCH))
	touch $@

second-torch-test: $(VENV2)/.deps peers
	test -n "$$(ls dist/fastloss-*.whl)"  # (make wheel first)
	FASTLOSS_TESTS_MISSING_PEERS=torchvision,ultralytics TEST_FILES="$(RELEASE_TESTS)" \
	  bash scripts/test_installed.sh dist/fastloss-*.whl $(PY2)

# torch 2.10.0, the oldest torch the stable ABI admits: the CPU wheel of `make sdist-test` (built
# against this venv's torch 2.14), tested the same way. PyPI's torch 2.10.0 is a CUDA 12.8 build
# (several GB), under which the +cu130 wheel's CUDA module is refused by design: run by hand, its
# result recorded in docs/installing.md.
OLDEST_TORCH ?= 2.10.0
VENV3 ?= .venv-torch$(OLDEST_TORCH)
OLDEST_WHEEL ?= build/from-sdist/dist/fastloss-*.whl
oldest-torch-test:
	test -n "$$(ls $(OLDEST_WHEEL))"  # (make sdist-test first)
	$(call torch_venv,$(VENV3),$(OLDEST_TORCH))
	FASTLOSS_TESTS_MISSING_PEERS=torchvision,ultralytics bash scripts/test_installed.sh $(OLDEST_WHEEL) $(VENV3)/bin/python

# The CPU kernels executed on aarch64, without torch (tests/replay): every op call the bitwise cases
# make (tests/bitwise.py), recorded here with this build's kernels, replayed by csrc/ops.cpp and
# csrc/cpu/*.cpp built with Debian's aarch64 cross g++ over tests/replay/fake_torch.cpp's buffers,
# under qemu-user: each returned and written tensor must be the recorded one, bit for bit.
AARCH64_CXX ?= aarch64-linux-gnu-g++
QEMU_AARCH64 ?= qemu-aarch64-static
TORCH_INCLUDE = $$($(PY) -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))')
aarch64-kernels: build
	command -v $(AARCH64_CXX) >/dev/null || apt-get install -y -q g++-aarch64-linux-gnu
	command -v $(QEMU_AARCH64) >/dev/null || apt-get install -y -q qemu-user-static
	$(PY) tests/replay/record.py build/replay/calls.bin
	bash tests/replay/build.sh build/replay/aarch64 $(AARCH64_CXX) "$(TORCH_INCLUDE)"
	$(QEMU_AARCH64) build/replay/aarch64/replay build/replay/calls.bin

# csrc/math/elementary.h executed on aarch64: tests/math/accuracy.cpp built by the cross g++ (static)
# and run under qemu-user; the digest of its results must be this machine's, bit for bit.
aarch64-math:
	command -v $(AARCH64_CXX) >/dev/null || apt-get install -y -q g++-aarch64-linux-gnu
	command -v $(QEMU_AARCH64) >/dev/null || apt-get install -y -q qemu-user-static
	mkdir -p build/math
	$(CXX) -std=c++20 -O2 -ffp-contract=off $(MATH_FLAGS) -Icsrc tests/math/accuracy.cpp -o build/math/digest-x86 -pthread
	$(AARCH64_CXX) -std=c++20 -O2 -ffp-contract=off -static -Icsrc tests/math/accuracy.cpp -o build/math/digest-aarch64 \
	  -pthread 2>&1 | { grep -v 'statically linked' || true; }
	build/math/digest-x86 digest > build/math/digest-x86.txt
	$(QEMU_AARCH64) build/math/digest-aarch64 digest > build/math/digest-aarch64.txt
	diff build/math/digest-x86.txt build/math/digest-aarch64.txt
	echo "aarch64: exp, expm1, log, log1p, pow and atan2 give this machine's bits"

# What scripts/gpu_check.sh installs offline on the GPU machine (Python 3.12 there): ninja, without
# which the build is serial, setuptools (a 3.12 venv has none), hypothesis with its dependencies.
# Git-ignored; a few MiB.
gpu-wheelhouse:
	rm -rf wheelhouse
	$(PYTHON) -m pip download -q --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
	  --platform manylinux_2_17_x86_64 --no-deps -d wheelhouse ninja==1.13.2 hypothesis==6.170.17 \
	  sortedcontainers==2.4.0 attrs==26.1.0 setuptools==84.2.1
	du -sh wheelhouse

# The GPU check's dry run on this machine: the same steps on the built tree, CUDA parts skipped.
gpu-check-dry: build peers
	rm -rf build/gpu-dry
	PYTHON=$(CURDIR)/$(PY) OUT=$(CURDIR)/build/gpu-dry bash scripts/gpu_check.sh --dry-run

# The CPU kernels (AVX2) and the LibTorch build under AddressSanitizer + UndefinedBehaviorSanitizer:
# the kernel-reaching tests, the fuzzer (FUZZ_SECONDS, default 180) and ctest; any report fails it
# (scripts/sanitize.sh; built out of tree in build/sanitize).
sanitize: $(VENV)/.deps peers
	bash scripts/sanitize.sh $(PY)

# Every CUDA kernel executed on the CPU (tests/cuda_emulation): csrc/cuda compiled unchanged as host
# C++, each block's threads as fibers, under ThreadSanitizer (32-lane warps) and AddressSanitizer +
# UBSan (64-lane warps); parity with the CPU kernels for every op family and dtype, thread schedules,
# seeded defects, `kernels launched: N of N` (tests/cuda_emulation/run.py). Test-only: not in the wheel.
cuda-emulate: build
	$(PY) tests/cuda_emulation/run.py

# csrc/math/elementary.h over every float32 input of exp, expm1, log, log1p, 10^9 float pairs of pow
# and atan2, 10^8 doubles per function: the widest ULP error of each, special values against the C
# library (tests/math/accuracy.cpp; docs/math.md holds its numbers). Torch-free; minutes on 2 cores.
# (the widest x86 flavour this CPU runs: build_facts.mk's flags, if the CPU has all its features)
has_features = $(shell for f in $(1); do grep -qw $$f /proc/cpuinfo || exit 1; done && echo y)
MATH_FLAGS := $(if $(call has_features,$(AVX512_CPU_FEATURES)),$(AVX512_FLAGS),$(if $(call has_features,$(AVX2_CPU_FEATURES)),$(AVX2_FLAGS),))
print-math-flags:
	@echo $(MATH_FLAGS)
math-exhaustive:
	mkdir -p build/math
	$(CXX) -std=c++20 -O2 -ffp-contract=off $(MATH_FLAGS) -Icsrc tests/math/accuracy.cpp -o build/math/accuracy -pthread
	time build/math/accuracy exhaustive

# The LibTorch build of the same sources (CPU; -DFASTLOSS_CUDA=ON for CUDA) and its C++ test.
cmake-test: $(VENV)/.deps
	cmake -S . -B build-cmake -G Ninja -DPython3_EXECUTABLE=$(CURDIR)/$(PY) $(CMAKE_ARGS)
	cmake --build build-cmake -j $(MAX_JOBS)
	cd build-cmake && ctest --output-on-failure

clean:
	rm -rf build build-cmake dist python/fastloss/*.so python/fastloss/_build_info.py

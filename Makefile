# The README's two commands, from a fresh clone:
#   make bench   the main job: virtualenv + pinned dev requirements, build the extension, benchmark
#   make test    the same environment and build, then the test suite
# FASTLOSS_CUDA=1 forces the CUDA kernels to compile (CI does), =0 skips them; default: when possible.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH_ARGS ?=
PYTEST_ARGS ?=
export MAX_JOBS ?= 2
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: bench test build check info cmake-test clean

$(VENV)/.deps: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	# the package is used in place from python/ (build_ext --inplace puts _C beside it)
	echo "$(CURDIR)/python" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/fastloss-dev.pth"
	touch $@

build: $(VENV)/.deps
	$(PY) setup.py -q build_ext --inplace

bench: build
	$(PY) -m fastloss bench $(BENCH_ARGS)

test: build
	$(PY) -m pytest tests $(PYTEST_ARGS)

check: build
	$(PY) -m fastloss check

info: build
	$(PY) -m fastloss info

# The LibTorch build of the same sources (CPU; -DFASTLOSS_CUDA=ON for CUDA) and its C++ test.
cmake-test: $(VENV)/.deps
	cmake -S . -B build-cmake -G Ninja -DPython3_EXECUTABLE=$(CURDIR)/$(PY) $(CMAKE_ARGS)
	cmake --build build-cmake -j $(MAX_JOBS)
	cd build-cmake && ctest --output-on-failure

clean:
	rm -rf build build-cmake dist python/fastloss/*.so python/fastloss/_build_info.py

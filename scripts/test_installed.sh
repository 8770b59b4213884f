#!/usr/bin/env bash
# Install a fastloss wheel into a clean virtualenv and test it there, away from the source tree:
#   bash scripts/test_installed.sh WHEEL [BASE_PYTHON]
# The virtualenv gets torch and the test peers from BASE_PYTHON's site-packages (default: .venv's,
# or the second-torch environment's) through one .pth line — never the package in python/ — and
# the wheel with --no-deps; `pip check` then proves its torch pin is satisfied. Runs `python -m
# fastloss info`, `check`, and the test suite against the installed package (test_build.py asserts
# where fastloss was imported from). Extra pytest arguments: PYTEST_ARGS; a part of the suite: TEST_FILES;
# pytest-xdist's workers: PYTEST_XDIST (the Makefile's).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
wheel="$(realpath "$1")"
base="${2:-$root/.venv/bin/python}"
# shellcheck source=scripts/clean_venv.sh
. "$(dirname "$0")/clean_venv.sh"
"$py" -m pip show -q fastloss >/dev/null
cd "$work"
"$py" -m pip check 2>&1 | grep -i "fastloss" && { echo "fastloss's requirements are not met"; exit 1; } || true
"$py" -m fastloss info
"$py" -m fastloss check
# the registration test asks for CUDA kernels exactly when the wheel says it has them (+cuXYZ)
case "$(basename "$wheel")" in *+cu*) cuda=1 ;; *) cuda=0 ;; esac
# TEST_FILES: test files under tests/ to run (space-separated); default: the whole suite
paths=()
for name in ${TEST_FILES:-}; do paths+=("$root/tests/$name"); done
[ ${#paths[@]} -gt 0 ] || paths=("$root/tests")
FASTLOSS_CUDA=$cuda FASTLOSS_EXPECT_INSTALLED="$work/venv" "$py" -m pytest "${paths[@]}" -q -p no:cacheprovider \
  ${PYTEST_XDIST:-} ${PYTEST_ARGS:-}

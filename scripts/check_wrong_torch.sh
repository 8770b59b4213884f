#!/usr/bin/env bash
# A wheel installed next to another torch than it was built for must refuse to import with the plain
# sentence (which torch it was built for, which this is, what to install or run) — never fall back:
#   bash scripts/check_wrong_torch.sh WHEEL OTHER_TORCH_PYTHON
set -euo pipefail
wheel="$(realpath "$1")"
base="$2"
# shellcheck source=scripts/clean_venv.sh
. "$(dirname "$0")/clean_venv.sh"
cd "$work"
running="$("$py" -c "import torch; print(torch.__version__)")"
if "$py" -c "import fastloss" 2>"$work/err"; then
  echo "FAIL: $(basename "$wheel") imported under torch $running"
  exit 1
fi
tail -n 1 "$work/err"
grep -q "^ImportError: fastloss .* was built for torch .*; this is torch $running\. Install the fastloss wheel" \
  "$work/err" || { echo "FAIL: not the plain ImportError"; cat "$work/err"; exit 1; }
echo "ok: the wheel refuses torch $running with the plain ImportError"

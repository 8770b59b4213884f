#!/usr/bin/env bash
# A wheel installed next to another torch than it was built for must refuse to import with the plain
# sentence (which torch it was built for, which this is, what to install or run) — never fall back:
#   bash scripts/check_wrong_torch.sh WHEEL OTHER_TORCH_PYTHON
set -euo pipefail
wheel="$(realpath "$1")"
base="$2"
work="$(mktemp -d)"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$base" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
  "$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/base-packages.pth"
"$py" -m pip install -q --no-deps --no-index "$wheel" 2>&1 | grep -v "WARNING: Location" || true
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

# Sourced by scripts/test_installed.sh and check_wrong_torch.sh: a clean virtualenv in $work/venv
# ($py its python) that sees BASE's site-packages (torch, the test peers) through one .pth line —
# never the package in python/ — with the wheel $wheel installed without its dependencies.
work="$(mktemp -d)"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$base" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
  "$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/base-packages.pth"
"$py" -m pip install -q --no-deps --no-index "$wheel" 2>&1 | grep -v "WARNING: Location" || true

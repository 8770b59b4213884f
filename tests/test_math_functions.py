"""fastloss's exp, expm1, log, log1p, pow, atan2, sin and cos (csrc/math/elementary.h), through the torch-free
harness tests/math/accuracy.cpp on a stratified sample (`make math-exhaustive` runs every float32 input):
within 1 ULP of a more precise reference, the C library's special values, and the same bits from the
generic (16-byte, any target: aarch64's width), AVX2 and AVX-512 builds of the same lines."""

import os
import re
import runpy
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "math", "accuracy.cpp")
FUNCTIONS = [
    *("expf", "expm1f", "logf", "log1pf", "sinf", "cosf", "powf", "atan2f"),
    *("exp", "expm1", "log", "log1p", "sin", "cos", "pow", "atan2"),
]


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return set(re.search(r"^flags\s*:(.*)$", f.read(), re.M).group(1).split())
    except (OSError, AttributeError):
        return set()


# the vector widths this CPU runs, and their flags (build_facts.mk's, as the kernels' build; with
# -ffp-contract=off)
FACTS = runpy.run_path(os.path.join(ROOT, "scripts", "build_facts.py"))["read"]()
VARIANTS = {"generic": []}
for _flavour in ("avx2", "avx512"):
    if set(FACTS[f"{_flavour.upper()}_CPU_FEATURES"].split()) <= cpu_flags():
        VARIANTS[_flavour] = FACTS[f"{_flavour.upper()}_FLAGS"].split()


def compiler():
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{variant: (exit code, output)} of `accuracy sample`, each variant built from the one source."""
    out = tmp_path_factory.mktemp("math")
    results = {}
    for name, flags in VARIANTS.items():
        binary = str(out / f"accuracy_{name}")
        subprocess.run(
            [
                compiler(),
                "-std=c++20",
                "-O2",
                "-ffp-contract=off",
                *flags,
                "-I",
                os.path.join(ROOT, "csrc"),
                SOURCE,
                "-o",
                binary,
                "-pthread",
            ],
            check=True,
        )
        done = subprocess.run([binary, "sample"], capture_output=True, text=True, timeout=600)
        results[name] = (done.returncode, done.stdout + done.stderr)
    return results


def errors(output):
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+)\s+([0-9.]+|inf|nan) ulp", output, re.M)}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_function_is_within_one_ulp(runs, variant):
    code, output = runs[variant]
    found = errors(output)
    assert set(found) == set(FUNCTIONS), output
    worst = {name: err for name, err in found.items() if not err <= 1.0}
    assert not worst, output


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_special_values_are_the_c_librarys(runs, variant):
    code, output = runs[variant]
    assert "specials: 0 differ" in output, output
    assert code == 0, output


def test_every_vector_width_gives_the_same_bits(runs):
    digests = {name: re.search(r"^digest (\w+)", output, re.M).group(1) for name, (_, output) in runs.items()}
    assert len(set(digests.values())) == 1, digests


def test_the_harness_sees_a_wrong_last_bit(tmp_path):
    """The harness itself: exp off by one ULP more than allowed fails it (a check that cannot fail is no check)."""
    broken = tmp_path / "broken.cpp"
    with open(SOURCE) as f:
        source = f.read()
    source = source.replace("[](VF x) { return fm::exp(x); }", "[](VF x) { return fm::exp(x) * 1.0000003f; }", 1)
    broken.write_text(source)
    binary = str(tmp_path / "broken")
    subprocess.run(
        [
            compiler(),
            "-std=c++20",
            "-O2",
            "-ffp-contract=off",
            "-I",
            os.path.join(ROOT, "csrc"),
            str(broken),
            "-o",
            binary,
            "-pthread",
        ],
        check=True,
    )
    done = subprocess.run([binary, "sample"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    assert errors(done.stdout)["expf"] > 1.0

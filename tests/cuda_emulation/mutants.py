"""Defects the emulation was not built for: every barrier of csrc/cuda removed, and every `<` bound
of a `for` loop there made one element too long (`<=`), one at a time; each mutant is built and the
parity tests of the op families that compile the mutated file run on it (barriers under
ThreadSanitizer, bounds under AddressSanitizer). A mutant is caught when that run fails.

    python tests/cuda_emulation/mutants.py [--list] [--only SUBSTRING] [--out FILE]

Prints one line per mutant and a summary; exit status 1 if any survived. Long (about a minute per
mutant): docs/cuda-emulation.md records a full run; CI runs the seeded defects of
tests/test_cuda_emulation.py instead.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import build  # noqa: E402

CUDA = os.path.join(ROOT, "csrc", "cuda")
# The families a shared header's mutant is tried on (every family includes them): a grid-stride
# elementwise kernel with a block reduction, the per-class block sums, the warp-group shuffles.
HEADER_FAMILIES = ["balanced_l1", "overlap", "softmax_focal"]
# A kernel file's mutants are tried on its family (csrc/cuda/<family>.cu) and on the families whose ops
# run on its kernels.
SOURCE_OF = {"compound": "overlap", "quality_focal": "sigmoid_focal"}


def mutants():
    """(id, file, offset, old, new, kind) for every barrier and every `for` loop's `<` bound."""
    found = []
    for name in sorted(os.listdir(CUDA)):
        if not name.endswith((".cu", ".cuh")):
            continue
        text = open(os.path.join(CUDA, name)).read()
        for m in re.finditer(r"__sync(threads|warp)\(\);", text):
            line = text.count("\n", 0, m.start()) + 1
            found.append((f"{name}:{line} remove {m.group(0)}", name, m.start(), m.group(0), "", "barrier"))
        for m in re.finditer(r"\bfor \(([^;]*);([^;]*);", text):
            cond = m.group(2)
            for c in re.finditer(r"(?<![<>=])<(?![<=])", cond):
                at = m.start(2) + c.start()
                line = text.count("\n", 0, at) + 1
                found.append((f"{name}:{line} `{cond.strip()}` -> <=", name, at, "<", "<=", "bound"))
    return found


def families(name):
    if not name.endswith(".cu"):
        return HEADER_FAMILIES
    family = name.removesuffix(".cu")
    return [family] + [f for f, source in SOURCE_OF.items() if source == family]


def run(mutant, tree, log):
    ident, name, offset, old, new, kind = mutant
    path = os.path.join(tree, "csrc", "cuda", name)
    original = open(os.path.join(CUDA, name)).read()
    assert original[offset : offset + len(old)] == old
    with open(path, "w") as f:
        f.write(original[:offset] + new + original[offset + len(old) :])
    variant = "tsan" if kind == "barrier" else "asan64"
    fams = families(name)
    sources = sorted({SOURCE_OF.get(f, f) for f in fams})
    try:
        library = build.build(
            variant,
            source=tree,
            out=os.path.join(tree, f"build-{variant}-{'-'.join(sources)}"),
            only=sources,
            quiet=True,
        )
    except RuntimeError as e:
        with open(path, "w") as f:
            f.write(original)
        return "caught (does not compile)", str(e)[-500:]
    env = {**os.environ, **build.environment(variant, library), "PYTHONDONTWRITEBYTECODE": "1"}
    # each family's dtype sweep (every kernel instance) and its first pairwise cases (its options)
    selection = " or ".join(
        f"(test_every_dtype_combination_matches_cpu and {f}-emulated) or "
        f"(test_cuda_matches_cpu and ({' or '.join(f'{f}-{i}-' for i in range(16))}))"
        for f in fams
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/test_cuda_parity.py",
        "-m",
        "emulation",
        "-q",
        "-x",
        "-s",
        "-p",
        "no:cacheprovider",
        "-k",
        selection,
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    with open(path, "w") as f:
        f.write(original)
    output = result.stdout + result.stderr
    log.write(f"===== {ident}\n{output[-3000:]}\n")
    if result.returncode == 0:
        return "SURVIVED", ""
    for report in (
        "ThreadSanitizer: data race",
        "AddressSanitizer",
        "runtime error",
        "CUDA emulation:",
        "AssertionError",
        "Mismatched elements",
    ):
        if report in output:
            return f"caught ({report.rstrip(':')})", ""
    return f"caught (exit {result.returncode})", ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", default="", help="run only the mutants whose description contains this")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "cuda-emulation", "mutants.log"))
    args = parser.parse_args()
    chosen = [m for m in mutants() if args.only in m[0]]
    if args.list:
        for m in chosen:
            print(m[0])
        return 0
    survived = 0
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with tempfile.TemporaryDirectory() as tree, open(args.out, "w") as log:
        shutil.copytree(os.path.join(ROOT, "csrc"), os.path.join(tree, "csrc"))
        for mutant in chosen:
            t0 = time.time()
            outcome, _ = run(mutant, tree, log)
            survived += outcome == "SURVIVED"
            print(f"{outcome:45s} {mutant[0]}  ({time.time() - t0:.0f} s)", flush=True)
    print(f"{len(chosen) - survived} of {len(chosen)} mutants caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())

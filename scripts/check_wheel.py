"""Check a built fastloss wheel against what a release wheel promises (docs/installing.md):

  python scripts/check_wheel.py dist/fastloss-*.whl

- file name and WHEEL tag: cp310-abi3-<platform>, where the platform is manylinux_2_28_x86_64 on
  x86-64 Linux; abi3audit finds no symbol outside the limited API of CPython 3.10;
- METADATA: Requires-Dist torch>=2.10 (the binaries use only torch 2.10's stable ABI),
  Requires-Python >=3.10, a local version naming the kind: +cu130 for CUDA 13 kernels (the CUDA
  major, from its _build_info.py), +cpu for a build without them; the LICENSE;
- contents: the extension modules (_C, _cpu_avx512, _cpu_avx2 on x86-64, _cuda with CUDA kernels)
  and _build_info.py, no other binary (no system library travels with it); neither the
  source tree's nor torch's path inside a binary; no extension module references a C++ symbol of
  torch's (c10::, at::, torch::): nothing outside the stable C shim;
- the CUDA kernels carry machine code (SASS) for every architecture of the build's CUDA_ARCHS, and
  PTX for those marked +PTX (cuobjdump: the CUDA toolkit's, or the copy triton ships);
- auditwheel: the glibc/libstdc++ symbol versions constrain the tag to manylinux_2_28 or better —
  torch's own libraries (libc10, libtorch*, its libgomp, the CUDA runtime) are torch's to provide;
- the size, printed (and at most 50 MB).
Prints one line per check; exit status 1 if any fails.
"""

import argparse
import email.parser
import os
import platform
import re
import subprocess
import sys
import tempfile
import zipfile

import build_facts  # (scripts/, beside this file)

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
X86_64_LINUX = sys.platform.startswith("linux") and platform.machine() == "x86_64"
PLATFORM = "manylinux_2_28_x86_64" if X86_64_LINUX else None
MAX_MB = 50
failures = []


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def torch_cxx_symbols(path):
    """The undefined C++ symbols of torch's namespaces a library references (demangled)."""
    out = subprocess.run(["nm", "-D", "--undefined-only", "-C", path], capture_output=True, text=True, check=True)
    return [line.split(None, 1)[-1] for line in out.stdout.splitlines() if re.search(r"\b(c10|at|torch)::", line)]


def cuobjdump():
    """The CUDA toolkit's cuobjdump, or the copy torch's triton ships; None if neither exists."""
    import shutil

    candidates = [
        shutil.which("cuobjdump"),
        os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "cuobjdump"),
    ]
    try:
        import triton

        candidates.append(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump"))
    except ImportError:
        pass
    return next((c for c in candidates if c and os.path.exists(c)), None)


def cuda_code(path):
    """({"sm_90", ...} with machine code, {"sm_120", ...} with PTX) of a CUDA library."""
    tool = cuobjdump()
    found = []
    for option in ("--list-elf", "--list-ptx"):
        out = subprocess.run([tool, option, path], capture_output=True, text=True).stdout
        found.append(set(re.findall(r"\.(sm_\d+)\.(?:cubin|ptx)", out)))
    return found


def expected_cuda_code(archs):
    """The architectures a TORCH_CUDA_ARCH_LIST ("7.5;8.0;...;12.0+PTX") gives SASS and PTX for."""
    sass, ptx = set(), set()
    for arch in archs.replace(",", ";").replace(" ", ";").split(";"):
        if arch:
            code = "sm_" + arch.replace("+PTX", "").replace(".", "")
            sass.add(code)
            if arch.endswith("+PTX"):
                ptx.add(code)
    return sass, ptx


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel")
    args = parser.parse_args()
    name = os.path.basename(args.wheel)
    with zipfile.ZipFile(args.wheel) as z:
        build = {}
        exec(z.read("fastloss/_build_info.py").decode(), build)
    local = f"+cu{build['CUDA'].split('.')[0]}0" if build["CUDA"] else "+cpu"
    print(f"info built with torch {build['TORCH']}, CUDA {build['CUDA']}")

    parts = name[: -len(".whl")].split("-")
    check(len(parts) == 5 and parts[0] == "fastloss", f"file name {name}")
    version, python_tag, abi_tag, platform_tag = parts[1:5] if len(parts) == 5 else ("", "", "", "")
    check(version.endswith(local) and version.count("+") == 1, f"local version {version!r} ends with {local!r}")
    check(
        (python_tag, abi_tag) == ("cp310", "abi3"), f"tags {python_tag}-{abi_tag}: one abi3 wheel for CPython >= 3.10"
    )
    if PLATFORM:
        check(platform_tag == PLATFORM, f"platform tag {platform_tag} == {PLATFORM}")

    with zipfile.ZipFile(args.wheel) as z:
        names = z.namelist()
        dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        meta = email.parser.Parser().parsestr(z.read(f"{dist_info}/METADATA").decode())
        wheel = email.parser.Parser().parsestr(z.read(f"{dist_info}/WHEEL").decode())
        binaries = {n: z.read(n) for n in names if n.endswith(".so") or ".so." in n}
    requires = meta.get_all("Requires-Dist") or []
    min_torch = build_facts.read()["MIN_TORCH"]
    check(requires == [f"torch>={min_torch}"], f"Requires-Dist {requires}: torch>={min_torch} (build_facts.mk)")
    check(meta["Requires-Python"] == ">=3.10", f"Requires-Python {meta['Requires-Python']}")
    check(any(n.endswith("/licenses/LICENSE") for n in names), "LICENSE in the wheel")
    tags = wheel.get_all("Tag")
    check(tags == [f"{python_tag}-{abi_tag}-{platform_tag}"], f"WHEEL tag {tags}")
    check(wheel["Root-Is-Purelib"] == "false", "Root-Is-Purelib: false")
    flavours = ["avx512", "avx2"] if platform.machine() == "x86_64" else ["default"]
    expected = {"fastloss/_C.abi3.so"} | {f"fastloss/_cpu_{f}.abi3.so" for f in flavours}
    expected |= {"fastloss/_cuda.abi3.so"} if build["CUDA"] else set()
    check(set(binaries) == expected, f"binaries {sorted(binaries)}")
    with tempfile.TemporaryDirectory() as tmp:
        torch_symbols = {}
        for n, data in binaries.items():
            path = os.path.join(tmp, os.path.basename(n))
            with open(path, "wb") as f:
                f.write(data)
            torch_symbols[n] = torch_cxx_symbols(path)
            if n.endswith("/_cuda.abi3.so") and cuobjdump():
                sass, ptx = cuda_code(path)
                want_sass, want_ptx = expected_cuda_code(build["CUDA_ARCHS"])
                check(
                    (sass, ptx) == (want_sass, want_ptx),
                    f"CUDA code for {build['CUDA_ARCHS']}: SASS "
                    f"{sorted(sass, key=lambda a: int(a[3:]))}, PTX {sorted(ptx)}",
                )
    bad = {n: s[:3] for n, s in torch_symbols.items() if s}
    check(not bad, f"no c10::/at::/torch:: symbol referenced by {sorted(torch_symbols)}: {bad or 'none'}")
    paths = [ROOT, os.path.dirname(os.path.abspath(torch.__file__))]  # the source tree, the build's torch
    leaked = [n for n, data in binaries.items() if any(p.encode() in data for p in paths)]
    check(not leaked, f"no build path ({', '.join(paths)}) inside {leaked or 'any binary'}")

    audit = subprocess.run(
        [sys.executable, "-m", "abi3audit", "--strict", "--report", args.wheel], capture_output=True, text=True
    )
    check(audit.returncode == 0, f"abi3audit --strict: {'clean' if audit.returncode == 0 else audit.stdout[-500:]}")

    if PLATFORM:
        torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
        env = {
            **os.environ,
            "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [torch_lib, os.environ.get("LD_LIBRARY_PATH")])),
        }
        show = subprocess.run(
            [sys.executable, "-m", "auditwheel", "show", args.wheel], capture_output=True, text=True, env=env
        )
        text = " ".join(show.stdout.split())
        found = re.search(r'This constrains the platform tag to "([^"]+)"', text)
        constrained = found.group(1) if found else f"(not found: {text[-300:]})"
        level = re.match(r"manylinux_(\d+)_(\d+)_", constrained)
        check(
            level is not None and (int(level.group(1)), int(level.group(2))) <= (2, 28),
            f"auditwheel: the system symbol versions constrain the tag to {constrained} (torch's libraries excluded)",
        )

    size_mb = os.path.getsize(args.wheel) / 2**20
    check(size_mb <= MAX_MB, f"size {size_mb:.1f} MB")
    print(f"{len(failures)} failure(s)" if failures else "wheel OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

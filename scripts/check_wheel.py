"""Check a built fastloss wheel against what a release wheel promises (README, "Installing"):

  python scripts/check_wheel.py dist/fastloss-*.whl [--torch X.Y]

- file name and WHEEL tag: cp310-abi3-<platform>, where the platform is manylinux_2_28_x86_64 on
  x86-64 Linux; abi3audit finds no symbol outside the limited API of CPython 3.10;
- METADATA: Requires-Dist torch==X.Y.* of the torch it was built with (its _build_info.py; --torch
  says which that must be), Requires-Python >=3.10, a local version +cuXYZ.torchX.Y (+cpu.torchX.Y
  for a build without CUDA kernels), the LICENSE;
- contents: the three extension modules (_C, _cpu_avx512, _cpu_avx2 on x86-64) and _build_info.py,
  no other binary; neither the source tree's nor torch's path inside a binary;
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
import zipfile

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel")
    parser.add_argument("--torch", help="the torch X.Y the wheel must be built for (default: this one)")
    args = parser.parse_args()
    name = os.path.basename(args.wheel)
    with zipfile.ZipFile(args.wheel) as z:
        build = {}
        exec(z.read("fastloss/_build_info.py").decode(), build)
    minor = ".".join(build["TORCH"].split("+")[0].split(".")[:2])
    expected_minor = args.torch or ".".join(torch.__version__.split("+")[0].split(".")[:2])
    check(minor == expected_minor, f"built for torch {build['TORCH']} (expected {expected_minor}.*)")
    local = f"+cu{build['CUDA'].replace('.', '')}.torch{minor}" if build["CUDA"] else f"+cpu.torch{minor}"

    parts = name[:-len(".whl")].split("-")
    check(len(parts) == 5 and parts[0] == "fastloss", f"file name {name}")
    version, python_tag, abi_tag, platform_tag = parts[1:5] if len(parts) == 5 else ("", "", "", "")
    check(version.endswith(local), f"local version {version!r} ends with {local!r}")
    check((python_tag, abi_tag) == ("cp310", "abi3"), f"tags {python_tag}-{abi_tag}: one abi3 wheel for CPython >= 3.10")
    if PLATFORM:
        check(platform_tag == PLATFORM, f"platform tag {platform_tag} == {PLATFORM}")

    with zipfile.ZipFile(args.wheel) as z:
        names = z.namelist()
        dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
        meta = email.parser.Parser().parsestr(z.read(f"{dist_info}/METADATA").decode())
        wheel = email.parser.Parser().parsestr(z.read(f"{dist_info}/WHEEL").decode())
        binaries = {n: z.read(n) for n in names if n.endswith(".so")}
    requires = meta.get_all("Requires-Dist") or []
    check(requires == [f"torch=={minor}.*"], f"Requires-Dist {requires} pins the build's torch {minor}.*")
    check(meta["Requires-Python"] == ">=3.10", f"Requires-Python {meta['Requires-Python']}")
    check(any(n.endswith("/licenses/LICENSE") for n in names), "LICENSE in the wheel")
    tags = wheel.get_all("Tag")
    check(tags == [f"{python_tag}-{abi_tag}-{platform_tag}"], f"WHEEL tag {tags}")
    check(wheel["Root-Is-Purelib"] == "false", "Root-Is-Purelib: false")
    flavours = ["avx512", "avx2"] if platform.machine() == "x86_64" else ["default"]
    expected = {"fastloss/_C.abi3.so"} | {f"fastloss/_cpu_{f}.abi3.so" for f in flavours}
    check(set(binaries) == expected, f"binaries {sorted(binaries)}")
    paths = [ROOT, os.path.dirname(os.path.abspath(torch.__file__))]  # the source tree, the build's torch
    leaked = [n for n, data in binaries.items() if any(p.encode() in data for p in paths)]
    check(not leaked, f"no build path ({', '.join(paths)}) inside {leaked or 'any binary'}")

    audit = subprocess.run([sys.executable, "-m", "abi3audit", "--strict", "--report", args.wheel],
                           capture_output=True, text=True)
    check(audit.returncode == 0, f"abi3audit --strict: {'clean' if audit.returncode == 0 else audit.stdout[-500:]}")

    if PLATFORM:
        torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
        env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [torch_lib,
                                                                               os.environ.get("LD_LIBRARY_PATH")]))}
        show = subprocess.run([sys.executable, "-m", "auditwheel", "show", args.wheel], capture_output=True, text=True,
                              env=env)
        text = " ".join(show.stdout.split())
        found = re.search(r'This constrains the platform tag to "([^"]+)"', text)
        constrained = found.group(1) if found else f"(not found: {text[-300:]})"
        level = re.match(r"manylinux_(\d+)_(\d+)_", constrained)
        check(level is not None and (int(level.group(1)), int(level.group(2))) <= (2, 28),
              f"auditwheel: the system symbol versions constrain the tag to {constrained} (torch's libraries excluded)")

    size_mb = os.path.getsize(args.wheel) / 2 ** 20
    check(size_mb <= MAX_MB, f"size {size_mb:.1f} MB")
    print(f"{len(failures)} failure(s)" if failures else "wheel OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

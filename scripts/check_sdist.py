"""Check that an sdist holds every file of the source tree a build and the tests need:

  python scripts/check_sdist.py dist/fastloss-X.tar.gz

Every file `git ls-files` lists (but .gitignore) must be in it, and no build output (.so, .o,
_build_info.py). Prints what is missing; exit status 1 if anything is.
"""

import os
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_SHIPPED = {".gitignore"}


def main(path):
    with tarfile.open(path) as tar:
        members = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile() and "/" in m.name]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    missing = sorted(set(tracked) - set(members) - NOT_SHIPPED)
    built = [m for m in members if m.endswith((".so", ".o")) or m.endswith("_build_info.py")]
    print(f"{path}: {len(members)} files; {len(tracked)} tracked")
    for m in missing:
        print(f"FAIL missing from the sdist: {m}")
    for m in built:
        print(f"FAIL build output in the sdist: {m}")
    print("sdist OK" if not (missing or built) else "sdist incomplete")
    return 1 if missing or built else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

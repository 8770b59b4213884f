"""The build facts (build_facts.mk, in Make's `NAME = value` syntax) for Python: setup.py and the
test builds read them here; `python scripts/build_facts.py NAME` prints one, for shell scripts."""

import os
import sys

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build_facts.mk")


def read(path=PATH):
    """{NAME: value} of every `NAME = value` line (comments and blank lines skipped)."""
    facts = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, value = (part.strip() for part in line.split("=", 1))
                facts[name] = value
    return facts


def min_torch(facts):
    """MIN_TORCH as (major, minor)."""
    return tuple(int(p) for p in facts["MIN_TORCH"].split("."))


def torch_target_version(facts):
    """The TORCH_TARGET_VERSION macro's value for MIN_TORCH (torch/csrc/stable/version.h)."""
    return "0x%02x%02x000000000000" % min_torch(facts)


if __name__ == "__main__":
    facts = read()
    print(torch_target_version(facts) if sys.argv[1] == "TORCH_TARGET_VERSION" else facts[sys.argv[1]])

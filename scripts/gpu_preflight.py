"""What the GPU machine has, before anything is built (scripts/gpu_check.sh): GPU, driver, torch and
its CUDA, nvcc (its major must be torch's), Triton (torch.compile on CUDA), ninja, hypothesis, cores.
Writes JSON to argv[1] and prints it; exit status 1 when the build cannot work (no nvcc, or an nvcc
whose CUDA major differs from torch's) — unless the machine has no GPU (a dry run)."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import torch


def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


def main(path):
    facts = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cores": os.cpu_count(),
        "gpu": None,
        "capability": None,
        "driver": None,
        "triton": importlib.util.find_spec("triton") is not None,
        "ninja": shutil.which("ninja") is not None or importlib.util.find_spec("ninja") is not None,
        "hypothesis": importlib.util.find_spec("hypothesis") is not None,
    }
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["gpus"] = torch.cuda.device_count()
        facts["capability"] = "%d.%d" % torch.cuda.get_device_capability(0)
        facts["driver"] = run("nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader")
    cuda_home = os.environ.get("CUDA_HOME") or ("/usr/local/cuda" if os.path.exists("/usr/local/cuda/bin/nvcc") else "")
    nvcc = os.path.join(cuda_home, "bin", "nvcc") if cuda_home else shutil.which("nvcc")
    version = run(nvcc, "--version") if nvcc else ""
    found = re.search(r"release (\d+)\.(\d+)", version)
    facts["nvcc"] = f"{found.group(1)}.{found.group(2)}" if found else None
    problems = []
    if facts["nvcc"] is None:
        problems.append("no nvcc found")
    elif torch.version.cuda and facts["nvcc"].split(".")[0] != torch.version.cuda.split(".")[0]:
        problems.append(
            f"nvcc {facts['nvcc']} and torch's CUDA {torch.version.cuda} differ in their major version: "
            "extensions built by it would not load"
        )
    if torch.version.cuda is None:
        problems.append(f"torch {torch.__version__} is a CPU-only build")
    facts["problems"] = problems
    facts["can_build_cuda"] = not problems
    with open(path, "w") as f:
        json.dump(facts, f, indent=1)
    print(json.dumps(facts, indent=1))
    return 1 if problems and facts["gpu"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

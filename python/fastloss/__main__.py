"""python -m fastloss {bench, check, info}."""

import argparse
import sys

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _fail(message):
    """A one-line error on stderr and exit status 2 (no traceback)."""
    print(f"python -m fastloss: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _device(name):
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        _fail(f"--device {name}: not a device name torch knows (use cpu, cuda or cuda:N)")
    if device.type not in ("cpu", "cuda"):
        _fail(f"--device {name}: fastloss has kernels for cpu and cuda only")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            _fail(f"--device {name}: no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            _fail(f"--device {name}: there are {torch.cuda.device_count()} CUDA device(s)")
    return device


def _cases(pattern, everything=False):
    from .bench import CASES

    patterns = None if pattern is None else [p for p in pattern.split(",") if p]

    # (without a pattern: the default run; the cases of minutes per row are run when named)
    def wanted(c):
        return (everything or c.default_run) if patterns is None else any(p in c.name for p in patterns)

    cases = [c for c in CASES if wanted(c)]
    if not cases:
        _fail(f"no benchmark case matches {pattern!r}; cases: {', '.join(c.name for c in CASES)}")
    return cases


def cmd_bench(args):
    if args.repeat < 1:
        _fail(f"--repeat must be >= 1, got {args.repeat}")
    if args.warmup is None:
        args.warmup = 3 if args.full else 1
    if args.warmup < 0:
        _fail(f"--warmup must be >= 0, got {args.warmup}")
    device, dtype = _device(args.device), DTYPES[args.dtype]
    from . import bench  # (the cases import the peers: after the arguments are known good)

    for path in args.peers or []:
        bench.load_peers(path)
    meta = bench.metadata(device, dtype)
    if args.plot:
        bench.plot_available()
    rows_said = "every implementation" if args.full else "fastloss beside the strongest form of each competitor"
    print(
        f"running {len(_cases(args.case))} case(s) on {meta['device_name']} ({device}), {args.dtype}, "
        f"{rows_said}; torch.compile warm-up takes a while; progress on stderr",
        flush=True,
    )
    rows = bench.run(
        _cases(args.case),
        device,
        dtype,
        repeat=args.repeat,
        warmup=args.warmup,
        compile_reference=not args.no_compile,
        full=args.full,
    )
    print()
    print(bench.format_table(rows, meta))
    if args.json:
        bench.write_json(args.json, rows, meta)
        print(f"\nwrote {args.json}")
    if args.plot:
        bench.plot(rows, meta, args.plot)
        print(f"wrote {args.plot}")


def cmd_check(args):
    """Compare the kernels with the reference. Exit status 0 only when the compiled kernels served
    every device checked: the CPU, and CUDA too when a GPU is visible (or --device names one)."""
    from . import _backend, bench

    info = _backend.info()
    devices = (
        [_device(args.device)]
        if args.device
        else [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    )
    problems = []
    if info["backend"] != "kernels":
        problems.append(f"the compiled kernels did not load ({info['unavailable_reason']})")
    if any(d.type == "cuda" for d in devices) and not info["cuda_loaded"]:
        problems.append(f"a GPU is present but no CUDA kernels are loaded ({info['cuda_unavailable_reason']})")
    failures = 0
    for device in devices:
        tested = (
            "reference vs reference"
            if info["backend"] != "kernels"
            else (
                f"CUDA kernels (archs {info['cuda_archs']})"
                if device.type == "cuda"
                else f"CPU kernels ({info['cpu_capability']})"
            )
        )
        print(f"checking {tested} against fastloss.reference on {device}")
        failures += bench.check(_cases(args.case, everything=True), device)
    if failures:
        problems.append(f"{failures} failure(s)")
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print(f"all good: the compiled kernels agree with the reference on {', '.join(map(str, devices))}")
    return 0


def cmd_info(_args):
    from . import __version__, _backend

    info = _backend.info()
    lines = {
        "fastloss": __version__,
        "built with torch": (info["built_torch"] or "-") + f" (stable ABI: runs on {info['stable_abi']})",
        "built for CUDA": info["built_cuda"] or "- (CPU kernels only)",
        "torch": torch.__version__,
        "torch CUDA": torch.version.cuda or "none (CPU-only torch)",
        "python": sys.version.split()[0],
        "backend": info["backend"] + (f" ({info['unavailable_reason']})" if info["unavailable_reason"] else ""),
        "CPU kernels": info["cpu_capability"] or "not loaded",
        "CPU threads": torch.get_num_threads(),
        "CUDA kernels": (
            f"loaded, compiled for archs {info['cuda_archs']}"
            if info["cuda_loaded"]
            else f"not loaded ({info['cuda_unavailable_reason']})"
        ),
        "CUDA device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none available",
    }
    for name, value in lines.items():
        print(f"{name}: {value}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastloss", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bench", help="time and memory of forward+backward against the peers (the main job)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument(
        "--plot", metavar="FILE.png", help="also draw time and memory per case and implementation (needs matplotlib)"
    )
    p.add_argument("--case", help="only cases whose name contains this (or any of several, comma-separated)")
    p.add_argument(
        "--full",
        action="store_true",
        help="every implementation (the eager reference, the peers' eager rows beside their torch.compile "
        "ones), each timed over all --repeat steps; default: fastloss beside the strongest form of "
        "each competitor, repeats stopped after 0.3 s",
    )
    p.add_argument(
        "--repeat", type=int, default=10, help="timed steps per implementation (>= 1; at most, without --full)"
    )
    p.add_argument("--warmup", type=int, help="untimed steps first (>= 0; default 1, 3 with --full)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile(reference)")
    p.add_argument(
        "--peers",
        metavar="FILE.py",
        action="append",
        help="a Python file that adds peer rows (bench.add_peer), e.g. scripts/bench_peers.py for peers "
        "the package must not import (ultralytics is AGPL); may be repeated",
    )
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("check", help="quick self-test of the built kernels against the reference")
    p.add_argument("--device")
    p.add_argument("--case")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("info", help="version, torch, and which kernels were compiled")
    p.set_defaults(fn=cmd_info)
    args = parser.parse_args(argv)
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
